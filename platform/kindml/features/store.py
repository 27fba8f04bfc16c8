"""Feast feature store operations: build offline tables, apply, retrieve, materialize.

The store is configured in code (``RepoConfig``): a file offline store, and an
online store that is SQLite by default or Redis when configured. The offline
tables of each data version live in their own folder (named by the data's
content hash), so the feature views always point at the data they were built
from. The definitions are a workload's (``Workload.feature_repo``).

The registry is a file in the repo folder by default. With ``registry`` set
to ``host:port`` it is Feast's remote registry (gRPC client of a
``feast serve_registry`` server): on the kind cluster that server is the one
the Feast operator runs for the ``FeatureStore`` (``feast-kindml-registry``),
so the features stage (in a KFP pod) and the predictor (in a KServe pod)
share one set of definitions instead of each seeing its own file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.errors import ConfigError, DataError, PrerequisiteMissing

log = logging.getLogger(__name__)


def registry_config(repo_dir: Path, registry: str = "") -> dict[str, Any]:
    """Feast's ``registry`` section: the file in ``repo_dir``, or a registry server at ``host:port``."""
    if not registry:
        return {"registry_type": "file", "path": str(repo_dir / "registry.db"), "cache_ttl_seconds": 60}
    host, _, port = registry.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in registry:
        raise ConfigError(
            f"the Feast registry address {registry!r} is not host:port",
            "Set features.registry (or KINDML_FEAST_REGISTRY in a pod) to e.g. feast-kindml-registry.kindml.svc.cluster.local:80, "
            "or leave it empty for the file registry.",
        )
    return {"registry_type": "remote", "path": registry}


@contextlib.contextmanager
def registry_errors(registry: str) -> Iterator[None]:
    """Name the registry server when a remote-registry call fails (gRPC errors say only "UNAVAILABLE")."""
    try:
        yield
    except Exception as exc:
        import grpc

        if not registry or not isinstance(exc, grpc.RpcError):
            raise
        code = exc.code().name if isinstance(exc, grpc.Call) else type(exc).__name__
        raise PrerequisiteMissing(
            f"the Feast registry server at {registry} did not answer ({code})",
            "On the kind cluster it is the Feast operator's registry: `kubectl --context kind-kindml -n kindml get featurestore kindml` "
            "should say Ready (`kindml status`); elsewhere check features.registry or leave it empty for the file registry.",
        ) from None


def repo_config(repo_dir: Path, project: str, online_store: str, redis_connection: str = "", registry: str = "") -> Any:
    from feast.repo_config import RepoConfig

    repo_dir.mkdir(parents=True, exist_ok=True)
    if online_store == "redis":
        if not redis_connection:
            raise PrerequisiteMissing(
                "the Redis online store is selected but no Redis connection is known",
                "Set features.redis_connection to host:port, or let `kindml capstone` start a local redis-server.",
            )
        online: dict[str, Any] = {"type": "redis", "connection_string": redis_connection}
    else:
        online = {"type": "sqlite", "path": str(repo_dir / "online_store.db")}
    return RepoConfig(
        project=project,
        provider="local",
        registry=registry_config(repo_dir, registry),
        offline_store={"type": "file"},
        online_store=online,
        entity_key_serialization_version=3,
        repo_path=str(repo_dir),
    )


def open_store(repo_dir: Path, project: str, online_store: str = "sqlite", redis_connection: str = "", registry: str = "") -> Any:
    from feast import FeatureStore

    return FeatureStore(config=repo_config(repo_dir, project, online_store, redis_connection, registry))


def write_offline_tables(tables: dict[str, pd.DataFrame], data_dir: Path) -> dict[str, int]:
    """Write a workload's offline tables as ``data_dir/<name>.parquet`` (its FileSources point there)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_parquet(data_dir / f"{name}.parquet", index=False)
    return {f"{name}_rows": len(df) for name, df in tables.items()}


def apply_definitions(store: Any, objects: list[Any]) -> list[str]:
    """``feast apply`` of the given objects (others in the project stay as they are)."""
    store.apply(objects)
    return sorted(getattr(o, "name", "") for o in objects)


def historical_features(store: Any, entity_df: pd.DataFrame, service: str, row_id: str) -> pd.DataFrame:
    """Point-in-time correct join of the feature service onto ``entity_df``.

    ``entity_df`` needs the join keys, ``event_timestamp`` and a unique
    ``row_id`` column; other columns (request fields, the label) pass through.
    """
    if "event_timestamp" not in entity_df.columns:
        raise DataError("the entity dataframe has no event_timestamp column", "Pass the events with their timestamps.")
    if row_id not in entity_df.columns or not entity_df[row_id].is_unique:
        raise DataError(f"the entity dataframe needs a unique {row_id} column", "Deduplicate the events first.")
    fs = store.get_feature_service(service)
    # Feast's file offline store DROPS an entity row when one view has rows for
    # its key but none inside the TTL, and it drops the WHOLE row, losing the
    # other views' features too. Online, the same case answers "unknown" for
    # that view only. So join one view at a time, put the dropped rows back
    # with missing features for that view, and merge: training sees what
    # serving will see, and nothing disappears silently.
    base = entity_df.reset_index(drop=True)
    out = base.copy()
    restored = 0
    for projection in fs.feature_view_projections:
        refs = [f"{projection.name_to_use()}:{f.name}" for f in projection.features]
        keys = [c for c in store.get_feature_view(projection.name).join_keys]
        part = store.get_historical_features(entity_df=base[[row_id, "event_timestamp", *keys]], features=refs, full_feature_names=False).to_df()
        missing = ~base[row_id].isin(part[row_id])
        restored = max(restored, int(missing.sum()))
        cols = [f.name for f in projection.features]
        out = out.merge(part[[row_id, *cols]], on=row_id, how="left")
    out.attrs["restored_rows"] = restored
    return out


def materialize(store: Any, start: datetime, end: datetime, views: list[str] | None = None) -> None:
    """Load the views' values of ``[start, end)`` into the online store (only ``views``, when given)."""
    store.materialize(start_date=start, end_date=end, feature_views=views)


def online_features(store: Any, service: str, entity_rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    fs = store.get_feature_service(service)
    return store.get_online_features(features=fs, entity_rows=entity_rows, full_feature_names=False).to_dict()
