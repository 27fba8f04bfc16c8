"""Feast repo config: the file registry by default, Feast's remote registry for a registry server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_file_registry_by_default(tmp_path: Path) -> None:
    from kindml.features.store import repo_config

    rc = repo_config(tmp_path, "kindml", "sqlite")
    assert rc.registry.registry_type == "file" and rc.registry.path == str(tmp_path / "registry.db")


def test_remote_registry_for_host_port(tmp_path: Path) -> None:
    from kindml.cluster import endpoints
    from kindml.features.store import repo_config

    rc = repo_config(tmp_path, "kindml", "redis", "redis.kindml.svc:6379", registry=endpoints.FEAST_REGISTRY)
    assert type(rc.registry).__name__ == "RemoteRegistryConfig"
    assert rc.registry.path == endpoints.FEAST_REGISTRY and not rc.registry.is_tls
    assert rc.online_store.type == "redis"


@pytest.mark.parametrize("bad", ["http://feast:80", "feast", "feast:0", "feast:99999", ":80", "a/b:80"])
def test_bad_registry_address_is_a_config_error(tmp_path: Path, bad: str) -> None:
    from kindml.errors import ConfigError
    from kindml.features.store import repo_config

    with pytest.raises(ConfigError) as e:
        repo_config(tmp_path, "kindml", "sqlite", registry=bad)
    assert bad in e.value.message and "host:port" in e.value.message and "features.registry" in e.value.hint


def test_config_field_validates_the_address(tmp_path: Path) -> None:
    from kindml.config import load_config
    from kindml.errors import ConfigError

    f = tmp_path / "kindml.yaml"
    f.write_text("features:\n  registry: http://feast-kindml-registry:80\n")
    with pytest.raises(ConfigError) as e:
        load_config(f, environ={})
    assert "kindml.yaml" in e.value.message and "registry" in e.value.message
    f.write_text("features:\n  registry: feast-kindml-registry.kindml.svc.cluster.local:80\n")
    assert load_config(f, environ={}).features.registry.endswith(":80")
