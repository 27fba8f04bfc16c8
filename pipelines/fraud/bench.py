"""The fraud capstone's MLP as a case of the ONNX Runtime benchmark: from the registry, or trained on the spot.

:data:`case` is the :class:`~kindml.bench.cases.BenchCase` registered as
``fraud_mlp`` in ``kindml.pipelines.BENCH_CASES`` (``kindml bench --models
fraud_mlp``; ``--source auto|registry|train``).

Data: the seeded generator (:mod:`kindml.pipelines.fraud.data`) and the same daily
account/merchant aggregates the Feast views serve, joined point-in-time in
pandas (the latest snapshot at or before each transaction, within the views'
TTL), then the capstone's :class:`~kindml.pipelines.fraud.preprocess.Assembler`. The
newest 20 % of rows are the held-out set (AUC), calibration rows for static
quantisation come from the older, training part.

- **registry**: the champion's ``model.onnx`` + ``preprocessing.json``; the
  registry holds no PyTorch weights, so the eager module is rebuilt from the
  ONNX initializers (the exporter keeps the parameter names) and checked for
  parity; the data is regenerated with the workspace's data settings.
- **train**: a fixed small world (seeded), plain PyTorch, a few epochs:
  deterministic and ~10 s on two cores.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kindml.bench.cases import BenchCase
from kindml.errors import BenchmarkError

if TYPE_CHECKING:
    from kindml.bench.models import ModelCase
    from kindml.bench.suite import BenchRequest

log = logging.getLogger(__name__)

# The world used when no registered model exists (fixed, so results reproduce).
TRAIN_WORLD = {"seed": 7, "accounts": 1_200, "merchants": 300, "days": 45, "rows": 36_000, "end_date": date(2026, 1, 31)}
TRAIN_NET = {"width": 64, "depth": 2, "dropout": 0.1}
TRAIN_EPOCHS = 6
TRAIN_SEED = 7
HOLDOUT_FRACTION = 0.2
CALIBRATION_ROWS = 512


@dataclass
class FraudData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


INPUT_NAME = "features"
NAME = "fraud_mlp"


@dataclass
class RegistrySource:
    tracking_uri: str
    model_name: str
    alias: str
    data: dict[str, Any] | None = None
    """The workspace's data settings (the champion is evaluated on freshly generated data like its training data)."""


def joined_frame(seed: int, accounts: int, merchants: int, days: int, rows: int, end_date: date | None) -> Any:
    """Generated transactions with their point-in-time account and merchant features."""
    import pandas as pd

    from kindml.pipelines.fraud.aggregates import account_daily, merchant_daily
    from kindml.pipelines.fraud.data import build_world, generate_history
    from kindml.pipelines.fraud.definitions import SNAPSHOT_TTL

    world = build_world(seed, accounts, merchants, days, end_date)
    tx = generate_history(world, rows)
    start = pd.Timestamp(world.start)
    acc = account_daily(tx, world.accounts, start, days).sort_values("event_timestamp", kind="stable")
    mer = merchant_daily(tx, start, days).sort_values("event_timestamp", kind="stable")
    left = tx.sort_values("event_timestamp", kind="stable")
    tol = pd.Timedelta(SNAPSHOT_TTL)
    joined = pd.merge_asof(left, acc, on="event_timestamp", by="account_id", direction="backward", tolerance=tol)
    joined = pd.merge_asof(joined, mer, on="event_timestamp", by="merchant_id", direction="backward", tolerance=tol)
    return joined.sort_values(["event_timestamp", "transaction_id"], kind="stable").reset_index(drop=True)


def split_frame(df: Any, holdout_fraction: float = HOLDOUT_FRACTION) -> tuple[Any, Any]:
    n_test = int(round(len(df) * holdout_fraction))
    return df.iloc[: len(df) - n_test], df.iloc[len(df) - n_test :]


def train_mlp(x: np.ndarray, y: np.ndarray, mean: list[float], std: list[float], epochs: int = TRAIN_EPOCHS, seed: int = TRAIN_SEED) -> Any:
    """The platform's MLP fitted with plain PyTorch (Adam, BCE with a positive-class weight); returns it with its sigmoid."""
    import torch

    from kindml.model.mlp import NetConfig, build_mlp, probability_module

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build_mlp(NetConfig(n_inputs=x.shape[1], **TRAIN_NET), mean, std)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    pos = max(float(y.sum()), 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(min(20.0, (len(y) - pos) / pos)))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 256):
            idx = perm[i : i + 256]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return probability_module(model, "sigmoid")


def rebuild_from_onnx(onnx_path: Path) -> Any:
    """The eager MLP (with its sigmoid) behind an exported ONNX file (initializers ``[model.]body.N.weight``, ``mean``, ``std``)."""
    import onnx
    import torch
    from onnx import numpy_helper

    from kindml.model.mlp import NetConfig, build_mlp, probability_module

    model = onnx.load(str(onnx_path))
    weights = {t.name.removeprefix("model."): numpy_helper.to_array(t) for t in model.graph.initializer}
    linear = sorted((k for k in weights if k.startswith("body.") and k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))
    if not linear or "mean" not in weights or "std" not in weights:
        raise BenchmarkError(f"{onnx_path} is not a kindml FraudMLP export (initializers: {sorted(weights)[:8]}...)", "Export it with the capstone's export stage.")
    n_inputs = int(weights[linear[0]].shape[1])
    width = int(weights[linear[0]].shape[0])
    depth = len(linear) - 1
    net = build_mlp(NetConfig(n_inputs=n_inputs, width=width, depth=depth))
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items() if k in net.state_dict()}
    missing = set(net.state_dict()) - set(state)
    if missing:
        raise BenchmarkError(f"{onnx_path}: cannot rebuild the PyTorch module, missing {sorted(missing)}", "The architecture differs from kindml.model.mlp.")
    net.load_state_dict(state)
    net.eval()
    return probability_module(net, "sigmoid")


def from_registry(source: RegistrySource, work_dir: Path) -> tuple[Path, Any, dict[str, Any]] | None:
    """(onnx path, preprocessing spec, metadata) of the champion, or None when there is none."""
    from kindml import registry
    from kindml.pipelines.fraud.preprocess import PreprocessingSpec

    ref = registry.resolve(source.tracking_uri, source.model_name, alias=source.alias)
    if ref is None:
        return None
    local = registry.download(source.tracking_uri, ref, work_dir / "registry")
    spec_path = local / "preprocessing.json"
    if not spec_path.is_file():
        raise BenchmarkError(f"{ref.name} v{ref.version} has no preprocessing.json", "Register a version with `kindml capstone`.")
    meta = {"source": f"registry {ref.name} v{ref.version} (@{source.alias})", "registry_version": ref.version, "registry_auc": ref.tags.get("kindml.roc_auc")}
    return local / "model.onnx", PreprocessingSpec.load(spec_path), meta


def build(work_dir: Path, registry_source: RegistrySource | None, data_settings: dict[str, Any] | None, require_registry: bool = False) -> dict[str, Any]:
    """Everything :func:`model_case` needs: model, ONNX file, data, metadata."""
    from kindml.model.export import check_parity, export_onnx
    from kindml.model.kit import OnnxSpec, frame_columns
    from kindml.pipelines.fraud.preprocess import Assembler, fit_spec

    def spec_of(net: Any, n: int) -> OnnxSpec:
        return OnnxSpec(net, {"features": np.zeros((2, n), dtype=np.float32)}, ["features"], ["fraud_probability"])

    t0 = time.perf_counter()
    found = from_registry(registry_source, work_dir) if registry_source is not None else None
    if found is None and require_registry:
        where = f"{registry_source.model_name}@{registry_source.alias}" if registry_source else "(no registry configured)"
        raise BenchmarkError(f"no registered fraud model {where}", "Run `kindml capstone` first, or use --source train (or auto).")
    if found is not None:
        onnx_path, spec, meta = found
        ds = dict(TRAIN_WORLD) | {k: v for k, v in (data_settings or {}).items() if k in TRAIN_WORLD}
        ds["rows"] = min(int(ds["rows"]), 60_000)
        df = joined_frame(ds["seed"], ds["accounts"], ds["merchants"], ds["days"], ds["rows"], ds["end_date"])
        train_df, test_df = split_frame(df)
        asm = Assembler(spec)
        data = FraudData(asm.transform(frame_columns(train_df)), train_df["is_fraud"].to_numpy(), asm.transform(frame_columns(test_df)), test_df["is_fraud"].to_numpy())
        net = rebuild_from_onnx(onnx_path)
        parity = check_parity(spec_of(net, data.x_test.shape[1]), onnx_path, {"features": data.x_test[:2000]}, 1e-4, 0)
        if not parity.passed:
            raise BenchmarkError(
                f"the PyTorch module rebuilt from {onnx_path.name} differs from the ONNX model (max abs error {parity.max_abs_error:.3g})",
                "Use --source train, or re-export the model with the capstone.",
            )
        meta |= {"data": {k: str(v) for k, v in ds.items()}, "data_note": "evaluated on freshly generated data with the workspace's data settings"}
    else:
        ds = dict(TRAIN_WORLD)
        df = joined_frame(ds["seed"], ds["accounts"], ds["merchants"], ds["days"], ds["rows"], ds["end_date"])
        train_df, test_df = split_frame(df)
        spec, x_train = fit_spec(frame_columns(train_df), "bench")
        x_test = Assembler(spec).transform(frame_columns(test_df))
        data = FraudData(x_train, train_df["is_fraud"].to_numpy(), x_test, test_df["is_fraud"].to_numpy())
        net = train_mlp(data.x_train, data.y_train, spec.mean, spec.std)
        onnx_path = work_dir / "fraud_mlp" / "model.onnx"
        export_onnx(spec_of(net, data.x_train.shape[1]), onnx_path, 18)
        spec.save(onnx_path.parent / "preprocessing.json")  # the same pair the capstone registers
        meta = {
            "source": "trained on the spot (no registered champion): generated world seed 7, plain PyTorch",
            "data": {k: str(v) for k, v in ds.items()},
            "net": dict(TRAIN_NET) | {"n_inputs": int(data.x_train.shape[1])},
            "epochs": TRAIN_EPOCHS,
        }
    rng = np.random.default_rng(0)
    calib = data.x_train[rng.choice(len(data.x_train), size=min(CALIBRATION_ROWS, len(data.x_train)), replace=False)]
    meta |= {
        "train_rows": int(len(data.x_train)),
        "holdout_rows": int(len(data.x_test)),
        "holdout_fraud_rate": round(float(data.y_test.mean()), 5),
        "calibration_rows": int(len(calib)),
        "prepare_seconds": round(time.perf_counter() - t0, 2),
    }
    return {"net": net, "onnx_path": onnx_path, "data": data, "calibration": calib, "meta": meta}


def model_case(work_dir: Path, source: RegistrySource | None = None, require_registry: bool = False) -> ModelCase:
    """The benchmark case: the champion of ``source`` if there is one (required with ``require_registry``), else trained here."""
    from kindml.bench import quality as q
    from kindml.bench.models import ModelCase
    from kindml.bench.onnx_export import quiet_torch_export

    with quiet_torch_export():
        built = build(work_dir, source, source.data if source else None, require_registry=require_registry)
    data = built["data"]
    y = data.y_test
    return ModelCase(
        name=NAME,
        onnx_path=built["onnx_path"],
        net=built["net"],
        input_names=(INPUT_NAME,),
        eval_inputs={INPUT_NAME: np.ascontiguousarray(data.x_test, dtype=np.float32)},
        calibration={INPUT_NAME: np.ascontiguousarray(built["calibration"], dtype=np.float32)},
        score=lambda out, ref: q.binary_quality(y, out.reshape(-1), ref.reshape(-1)),
        meta=built["meta"] | {"quality_metric": "roc_auc on the held-out (newest) rows", "eval_rows": int(len(y))},
    )


def _build_for(req: BenchRequest, work_dir: Path) -> ModelCase:
    from kindml.bench.suite import registry_source

    source, required = registry_source(req, case)
    return model_case(work_dir, source, require_registry=required)


def registry_source(cfg: Any, tracking_uri: str) -> RegistrySource:
    """Where the workspace's champion is, with the data settings to regenerate its evaluation data."""
    from kindml.pipelines.fraud.workload import FraudWorkload

    opts = FraudWorkload.parse_options(cfg.workloads.get("fraud", {}))
    data = {"seed": cfg.data.seed, "accounts": opts.accounts, "merchants": opts.merchants, "days": cfg.data.days,
            "rows": cfg.data.rows, "end_date": cfg.data.end_date}
    return RegistrySource(tracking_uri, cfg.registry.model_name or FraudWorkload.model_name, cfg.registry.champion_alias, data)


case = BenchCase(
    name=NAME,
    primary_metric="roc_auc",
    acceptable=("roc_auc_delta", -0.005),  # the capstone's default AUC budget (quantize.accuracy_budget)
    build=_build_for,
    registry_source=registry_source,
    description="the fraud capstone's MLP (registry champion, or trained on a fixed generated world)",
)
