"""Training: a Ray Tune search (ASHA over lr / width / dropout), then a
distributed Ray Train fit (``TorchTrainer``, DDP over CPU workers).

Reproducibility: the split is by time, the search space is sampled by a seeded
searcher, trials run one after another (so ASHA's stopping decisions do not
depend on which trial reports first), and every worker seeds torch. The same
seed and data give the same model.

Fault tolerance: the final fit checkpoints every epoch and survives
``train.max_failures`` worker failures by restoring the last checkpoint
(Ray Train ``FailureConfig``); beyond that it fails with a clear error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.config import TrainConfig
from kindml.errors import KindmlError

log = logging.getLogger(__name__)


class TrainingFailed(KindmlError):
    exit_code = 8


@dataclass
class Split:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass
class TrainResult:
    net_config: dict[str, Any]
    best_params: dict[str, Any]
    trials: list[dict[str, Any]]
    history: list[dict[str, float]]
    val_auc: float
    seconds: dict[str, float] = field(default_factory=dict)
    restored_from_checkpoint: bool = False


def split_by_time(df: pd.DataFrame, test_fraction: float, val_fraction: float) -> Split:
    """Oldest rows train, then validation, newest held out: no look-ahead."""
    df = df.sort_values(["event_timestamp", "transaction_id"], kind="stable").reset_index(drop=True)
    n = len(df)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_test - n_val
    if n_train < 100 or n_val < 20 or n_test < 20:
        raise TrainingFailed(
            f"not enough rows to split ({n}: train {n_train}, val {n_val}, test {n_test})",
            "Generate more rows (--rows) or lower train.test_fraction / train.val_fraction.",
        )
    for part in (df.iloc[:n_train], df.iloc[n_train : n_train + n_val]):
        if part["is_fraud"].nunique() < 2:
            raise TrainingFailed("a split has only one class", "Use more rows or days so both classes appear in every split.")
    return Split(df.iloc[:n_train], df.iloc[n_train : n_train + n_val], df.iloc[n_train + n_val :])


@contextlib.contextmanager
def ray_session(num_cpus: int) -> Iterator[None]:
    """A private local Ray for this process; always shut down, never `ray stop`."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.60 token auth writes ~/.ray otherwise
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    if os.environ.get("RAY_ADDRESS"):  # inside a KubeRay RayJob: join the job's RayCluster
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, logging_level=logging.WARNING)
        try:
            yield
        finally:
            ray.shutdown()
        return
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=True,
    )
    try:
        yield
    finally:
        ray.shutdown()


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) > 1 else float("nan")


def _epoch(model: Any, opt: Any, loader: Any) -> float:
    import torch

    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        opt.zero_grad()
        logits = model.logits(xb) if hasattr(model, "logits") else model.module.logits(xb)
        loss = loss_fn(logits.squeeze(1), yb)
        loss.backward()
        opt.step()
        total += float(loss) * len(yb)
        count += len(yb)
    return total / max(count, 1)


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    net = model.module if hasattr(model, "module") else model
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x)).squeeze(1).numpy()


def _tune_trial(config: dict[str, Any], data: dict[str, Any]) -> None:
    """One Tune trial: a single-process fit reporting validation AUC per epoch."""
    import torch
    from ray import tune
    from torch.utils.data import DataLoader, TensorDataset

    from kindml.model.net import FraudMLP, NetConfig

    torch.set_num_threads(1)
    torch.manual_seed(int(config["seed"]))
    x_tr, y_tr, x_va, y_va = data["x_train"], data["y_train"], data["x_val"], data["y_val"]
    model = FraudMLP(NetConfig(x_tr.shape[1], width=int(config["width"]), dropout=float(config["dropout"])), data["mean"], data["std"])
    opt = torch.optim.Adam(model.parameters(), lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
    gen = torch.Generator().manual_seed(int(config["seed"]))
    loader = DataLoader(TensorDataset(torch.from_numpy(x_tr), torch.from_numpy(y_tr)), batch_size=int(config["batch_size"]), shuffle=True, generator=gen)
    for epoch in range(int(config["epochs"])):
        loss = _epoch(model, opt, loader)
        tune.report({"val_auc": _auc(y_va, _predict(model, x_va)), "train_loss": loss, "epoch": epoch + 1})


def _train_loop(config: dict[str, Any]) -> None:
    """Ray Train worker loop: DDP fit with a checkpoint every epoch (resumable)."""
    import ray
    import ray.train
    import ray.train.torch
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from kindml.model.net import FraudMLP, NetConfig

    torch.set_num_threads(1)
    data = ray.get(config["data_ref"])
    seed = int(config["seed"])
    torch.manual_seed(seed)
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    x_tr, y_tr, x_va, y_va = data["x_train"], data["y_train"], data["x_val"], data["y_val"]
    net = FraudMLP(NetConfig(x_tr.shape[1], width=int(config["width"]), dropout=float(config["dropout"])), data["mean"], data["std"])
    opt = torch.optim.Adam(net.parameters(), lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
    start_epoch, history, restored = 0, [], False
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, history, restored = state["epoch"], state["history"], True
    model = ray.train.torch.prepare_model(net)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(torch.from_numpy(x_tr), torch.from_numpy(y_tr)), batch_size=int(config["batch_size"]), shuffle=True, generator=gen)
    loader = ray.train.torch.prepare_data_loader(loader, move_to_device=False)
    fault_epoch = int(os.environ.get("KINDML_FAULT_KILL_WORKER_AT_EPOCH", "-1"))  # fault-injection hook for tests
    for epoch in range(start_epoch, int(config["epochs"])):
        if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        marker = Path(str(config.get("fault_marker", ""))) if config.get("fault_marker") else None
        if epoch == fault_epoch and rank == 1 and not restored and marker is not None and not marker.exists():
            marker.write_text("killed", encoding="utf-8")  # inject once per run
            time.sleep(3)  # mid-epoch, after the previous epoch's checkpoint has been registered
            os._exit(1)  # simulate a worker process dying
        loss = _epoch(model, opt, loader)
        val_auc = _auc(y_va, _predict(model, x_va))
        history.append({"epoch": epoch + 1, "train_loss": loss, "val_auc": val_auc})
        metrics = {"epoch": epoch + 1, "train_loss": loss, "val_auc": val_auc, "restored": restored}
        if rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save(
                    {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "history": history, "net_config": net.cfg.to_dict()},
                    Path(tmp) / "state.pt",
                )
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)


def tune_then_fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    mean: list[float],
    std: list[float],
    cfg: TrainConfig,
    storage: Path,
    out_dir: Path,
) -> TrainResult:
    """Run the search and the distributed fit; write ``model.pt`` into ``out_dir``."""
    import ray
    import torch
    from ray import train as ray_train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from kindml.model.net import FraudMLP, NetConfig, save_model

    storage.mkdir(parents=True, exist_ok=True)
    data = {
        "x_train": x_train.astype(np.float32),
        "y_train": y_train.astype(np.float32),
        "x_val": x_val.astype(np.float32),
        "y_val": y_val.astype(np.float32),
        "mean": mean,
        "std": std,
    }
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    space = {
        "lr": tune.loguniform(5e-4, 1e-2),
        "width": tune.choice([32, 64, 128]),
        "dropout": tune.choice([0.0, 0.1, 0.2]),
        "weight_decay": tune.choice([0.0, 1e-5, 1e-4]),
        "batch_size": cfg.batch_size,
        "epochs": cfg.tune_epochs,
        "seed": cfg.seed,
    }
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(_tune_trial, data=data), {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="val_auc",
            mode="max",
            num_samples=cfg.tune_trials,
            max_concurrent_trials=1,
            search_alg=BasicVariantGenerator(random_state=cfg.seed),
            scheduler=ASHAScheduler(time_attr="epoch", max_t=cfg.tune_epochs, grace_period=1, reduction_factor=2),
        ),
        run_config=tune.RunConfig(name="tune", storage_path=str(storage), verbose=0),
    )
    grid = tuner.fit()
    trials = []
    for r in grid:
        if r.error:
            continue
        trials.append(
            {k: r.config[k] for k in ("lr", "width", "dropout", "weight_decay")}
            | {"val_auc": float(r.metrics.get("val_auc", float("nan"))), "epochs_run": int(r.metrics.get("epoch", 0))}
        )
    if not trials:
        raise TrainingFailed("every Ray Tune trial failed", f"See the trial logs under {storage / 'tune'}.")
    best = grid.get_best_result(metric="val_auc", mode="max", scope="last")
    best_params = {k: best.config[k] for k in ("lr", "width", "dropout", "weight_decay")}
    seconds["tune"] = round(time.perf_counter() - t0, 2)

    t1 = time.perf_counter()
    data_ref = ray.put(data)
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={**best_params, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "seed": cfg.seed, "data_ref": data_ref,
                           "fault_marker": str(storage / "fault-injected")},
        scaling_config=ray_train.ScalingConfig(num_workers=cfg.workers, use_gpu=False, resources_per_worker={"CPU": cfg.cpus_per_worker}),
        run_config=ray_train.RunConfig(
            name="fit",
            storage_path=str(storage),
            failure_config=ray_train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray_train.CheckpointConfig(num_to_keep=1),
        ),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # Ray wraps worker errors; give the user one sentence
        raise TrainingFailed(
            f"distributed training failed after {cfg.max_failures} allowed worker failure(s): {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
            f"Inspect the Ray Train logs under {storage / 'fit'}; raise train.max_failures to survive more worker crashes.",
        ) from exc
    if result.checkpoint is None:
        raise TrainingFailed("distributed training produced no checkpoint", f"See {storage / 'fit'}.")
    with result.checkpoint.as_directory() as d:
        state = torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)
    seconds["fit"] = round(time.perf_counter() - t1, 2)
    net = FraudMLP(NetConfig(**state["net_config"]), mean, std)
    net.load_state_dict(state["model"])
    net.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(net, out_dir / "model.pt")
    history = state["history"]
    restored = bool(result.metrics.get("restored", False)) if result.metrics else False
    return TrainResult(
        net_config=net.cfg.to_dict(),
        best_params=best_params,
        trials=trials,
        history=history,
        val_auc=float(history[-1]["val_auc"]) if history else float("nan"),
        seconds=seconds,
        restored_from_checkpoint=restored,
    )


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=float), encoding="utf-8")
