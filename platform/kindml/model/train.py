"""Training any model kit's recipe: a Ray Tune search (ASHA), then a distributed Ray Train fit
(``TorchTrainer``, DDP over CPU workers).

Reproducibility: the split is by time, the search space is sampled by a seeded
searcher, trials run one after another (so ASHA's stopping decisions do not
depend on which trial reports first), and every worker seeds torch. The same
seed and data give the same model.

Fault tolerance: the final fit checkpoints every epoch and survives
``train.max_failures`` worker failures by restoring the last checkpoint
(Ray Train ``FailureConfig``); beyond that it fails with a clear error.

Data: dicts of numpy arrays (``{"train": {...inputs, "y"}, "val": {...}, "meta": {...}}``)
put into the Ray object store once; the recipe (:class:`~kindml.model.recipe.TorchRecipe`)
builds the model and computes the loss and the validation metric.
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
from kindml.model.recipe import TorchRecipe

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
    best_params: dict[str, Any]
    trials: list[dict[str, Any]]
    history: list[dict[str, float]]
    val_score: float
    val_metric: str
    seconds: dict[str, float] = field(default_factory=dict)
    restored_from_checkpoint: bool = False


def split_by_time(df: pd.DataFrame, test_fraction: float, val_fraction: float, timestamp: str = "event_timestamp",
                  row_id: str | None = None, label: str | None = None) -> Split:
    """Oldest rows train, then validation, newest held out: no look-ahead."""
    order = [timestamp, row_id] if row_id and row_id in df.columns else [timestamp]
    df = df.sort_values(order, kind="stable").reset_index(drop=True)
    n = len(df)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_test - n_val
    if n_train < 100 or n_val < 20 or n_test < 20:
        raise TrainingFailed(
            f"not enough rows to split ({n}: train {n_train}, val {n_val}, test {n_test})",
            "Generate more rows (--rows) or lower train.test_fraction / train.val_fraction.",
        )
    if label is not None:
        for part in (df.iloc[:n_train], df.iloc[n_train : n_train + n_val]):
            if part[label].nunique() < 2:
                raise TrainingFailed("a split has only one class", "Use more rows or days so every class appears in every split.")
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
    # workers import the workload's modules by name: a user's workload folder travels on PYTHONPATH
    runtime_env = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}} if os.environ.get("PYTHONPATH") else None
    ray.init(
        num_cpus=num_cpus,
        runtime_env=runtime_env,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=True,
    )
    try:
        yield
    finally:
        ray.shutdown()


class DictDataset:
    """Rows of a dict of equally long arrays; a batch is a dict of tensors (DataLoader's default collate)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        import torch

        self.tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        self.n = len(next(iter(arrays.values())))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.tensors.items()}


def _epoch(recipe: TorchRecipe, model: Any, opt: Any, loader: Any) -> float:
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        opt.zero_grad()
        loss = recipe.loss(model, batch)
        loss.backward()
        opt.step()
        k = len(batch["y"])
        total += float(loss) * k
        count += k
    return total / max(count, 1)


def _val(recipe: TorchRecipe, model: Any, val: dict[str, np.ndarray]) -> float:
    return recipe.score(val["y"], recipe.predict(model, val))


def _tune_trial(config: dict[str, Any], data: dict[str, Any], recipe: TorchRecipe) -> None:
    """One Tune trial: a single-process fit reporting the validation metric per epoch."""
    import torch
    from ray import tune
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    torch.manual_seed(int(config["seed"]))
    model = recipe.build(config, data["meta"])
    opt = recipe.optimizer(model, config)
    gen = torch.Generator().manual_seed(int(config["seed"]))
    loader = DataLoader(DictDataset(data["train"]), batch_size=int(config["batch_size"]), shuffle=True, generator=gen)
    key = f"val_{recipe.val_metric}"
    for epoch in range(int(config["epochs"])):
        loss = _epoch(recipe, model, opt, loader)
        tune.report({key: _val(recipe, model, data["val"]), "train_loss": loss, "epoch": epoch + 1})


def _train_loop(config: dict[str, Any]) -> None:
    """Ray Train worker loop: DDP fit with a checkpoint every epoch (resumable)."""
    import ray
    import ray.train
    import ray.train.torch
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    data = ray.get(config["data_ref"])
    recipe: TorchRecipe = config["recipe"]
    params = config["params"]
    seed = int(config["seed"])
    torch.manual_seed(seed)
    rank = ray.train.get_context().get_world_rank()
    net = recipe.build(params, data["meta"])
    opt = recipe.optimizer(net, params)
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
    loader = DataLoader(DictDataset(data["train"]), batch_size=int(config["batch_size"]), shuffle=True, generator=gen)
    loader = ray.train.torch.prepare_data_loader(loader, move_to_device=False)
    fault_epoch = int(os.environ.get("KINDML_FAULT_KILL_WORKER_AT_EPOCH", "-1"))  # fault-injection hook for tests
    key = f"val_{recipe.val_metric}"
    for epoch in range(start_epoch, int(config["epochs"])):
        if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        marker = Path(str(config.get("fault_marker", ""))) if config.get("fault_marker") else None
        if epoch == fault_epoch and rank == 1 and not restored and marker is not None and not marker.exists():
            marker.write_text("killed", encoding="utf-8")  # inject once per run
            time.sleep(3)  # mid-epoch, after the previous epoch's checkpoint has been registered
            os._exit(1)  # simulate a worker process dying
        loss = _epoch(recipe, model, opt, loader)
        score = _val(recipe, model, data["val"])
        history.append({"epoch": epoch + 1, "train_loss": loss, key: score})
        metrics = {"epoch": epoch + 1, "train_loss": loss, key: score, "restored": restored}
        if rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "history": history},
                           Path(tmp) / "state.pt")
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)


def tune_then_fit(recipe: TorchRecipe, train: dict[str, np.ndarray], val: dict[str, np.ndarray], meta: dict[str, Any],
                  cfg: TrainConfig, storage: Path, out_dir: Path) -> TrainResult:
    """Run the search and the distributed fit; write ``model.pt`` (the recipe's format) into ``out_dir``."""
    import ray
    import torch
    from ray import train as ray_train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    storage.mkdir(parents=True, exist_ok=True)
    data = {"train": train, "val": val, "meta": meta}
    key = f"val_{recipe.val_metric}"
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    space = recipe.search_space(cfg)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(_tune_trial, data=data, recipe=recipe), {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=key,
            mode="max",
            num_samples=cfg.tune_trials,
            max_concurrent_trials=1,
            search_alg=BasicVariantGenerator(random_state=cfg.seed),
            scheduler=ASHAScheduler(time_attr="epoch", max_t=cfg.tune_epochs, grace_period=1, reduction_factor=2),
        ),
        run_config=tune.RunConfig(name="tune", storage_path=str(storage), verbose=0),
    )
    grid = tuner.fit()
    tuned = recipe.tuned or tuple(k for k in space if k not in ("batch_size", "epochs", "seed"))
    trials = []
    for r in grid:
        if r.error:
            continue
        trials.append({k: r.config[k] for k in tuned}
                      | {key: float(r.metrics.get(key, float("nan"))), "epochs_run": int(r.metrics.get("epoch", 0))})
    if not trials:
        raise TrainingFailed("every Ray Tune trial failed", f"See the trial logs under {storage / 'tune'}.")
    best = grid.get_best_result(metric=key, mode="max", scope="last")
    best_params = {k: best.config[k] for k in tuned}
    seconds["tune"] = round(time.perf_counter() - t0, 2)

    t1 = time.perf_counter()
    params = {**{k: v for k, v in best.config.items() if k not in ("epochs",)}, "batch_size": cfg.batch_size, "seed": cfg.seed}
    data_ref = ray.put(data)
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"params": params, "recipe": recipe, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "seed": cfg.seed,
                           "data_ref": data_ref, "fault_marker": str(storage / "fault-injected")},
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
    net = recipe.build(params, meta)
    net.load_state_dict(state["model"])
    net.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe.save(net, params, meta, out_dir / "model.pt")
    history = state["history"]
    restored = bool(result.metrics.get("restored", False)) if result.metrics else False
    return TrainResult(
        best_params=best_params,
        trials=trials,
        history=history,
        val_score=float(history[-1][key]) if history else float("nan"),
        val_metric=recipe.val_metric,
        seconds=seconds,
        restored_from_checkpoint=restored,
    )


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=float), encoding="utf-8")
