"""Batch inference: score a table of entity rows with an exported model bundle, next to real-time serving.

The same path as the predictor, for many rows at once: the workload's kit turns
columns into the ONNX model's inputs (``kit.feeds``), ONNX Runtime runs the
graph, and the workload turns each scored batch into output rows
(``Workload.batch_output``). Two engines run the very same
:class:`BatchScorer`:

- :func:`score_with_ray` — Ray Data: ``from_pandas`` → ``map_batches`` with a
  pool of actors (``ActorPoolStrategy``), each loading the workload, the kit
  and one single-threaded ONNX Runtime session once, then scoring batch after
  batch in parallel. This is what the ``batch`` stage runs (locally in a
  private Ray; on a cluster the same code joins a RayCluster through
  ``RAY_ADDRESS``).
- :func:`score_with_pandas` — a plain loop over DataFrame slices in this
  process: the reference the benchmark (``benchmarks/batch``) compares with.

Both return the output table and :class:`BatchStats` (rows, seconds, rows/s).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

TIMING = "_kindml_scoring_seconds"


@dataclass(frozen=True)
class ScorerSpec:
    """Everything a scoring process needs to rebuild the scorer: picklable, small."""

    workload: str
    """The workload reference (module, ``module:Class`` or ``.py`` path)."""
    config_json: str
    model_dir: str
    """An exported bundle: model.onnx and the kit's preprocessing files."""
    threads: int = 1
    """ONNX Runtime intra-op threads per scorer (1: parallelism comes from the actors)."""


class BatchScorer:
    """One scorer: the workload, its kit loaded from the bundle, an ONNX Runtime session; called per batch.

    A callable class, so Ray Data constructs it once per actor (``map_batches(BatchScorer, fn_constructor_args=...)``).
    """

    def __init__(self, spec: ScorerSpec) -> None:
        from kindml.config import KindmlConfig
        from kindml.model.export import onnx_session
        from kindml.workload.loader import load_workload

        cfg = KindmlConfig.model_validate_json(spec.config_json)
        self.workload = load_workload(spec.workload)(cfg)
        self.kit = self.workload.model_kit().load(Path(spec.model_dir))
        self.session = onnx_session(Path(spec.model_dir) / "model.onnx", threads=spec.threads)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from kindml.model.export import run_onnx
        from kindml.model.kit import frame_columns

        t0 = time.perf_counter()
        batch = batch.reset_index(drop=True)
        outputs = run_onnx(self.session, self.kit.feeds(frame_columns(batch)))
        out = self.workload.batch_output(self.kit, batch, outputs)
        if len(out):  # this batch's compute time, spread over its rows (summed by the engine, then dropped)
            out[TIMING] = (time.perf_counter() - t0) / len(out)
        return out


@dataclass
class BatchStats:
    engine: str
    rows: int
    batches: int
    batch_size: int
    workers: int
    seconds: float
    """Wall time of the scoring (for Ray: from the dataset's creation to the last output row, actor start-up included);
    ``extra["compute_seconds"]`` is the scorers' own time (feeds, ONNX Runtime, output rows), summed over batches."""
    rows_per_s: float
    setup_seconds: float = 0.0
    """Not in ``seconds``: starting the local Ray (Ray Data) or building the scorer (pandas)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plain_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Arrow-backed columns (Ray Data hands lists back as ``list<...>[pyarrow]``) as plain numpy / object columns, so the
    parquet written from the table reads back everywhere (Feast's dask offline store does not know Arrow dtypes)."""
    for c in df.columns:
        if isinstance(df[c].dtype, pd.ArrowDtype):
            values = df[c].to_list()
            df[c] = pd.Series(values, index=df.index, dtype=object) if values and isinstance(values[0], list) else pd.Series(values, index=df.index)
    return df


def _compute_time(out: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    if TIMING not in out.columns:
        return out, 0.0
    return out.drop(columns=TIMING).reset_index(drop=True), float(out[TIMING].sum())


def _batches(n: int, size: int) -> int:
    return (n + size - 1) // size if n else 0


def score_with_pandas(rows: pd.DataFrame, spec: ScorerSpec, batch_size: int) -> tuple[pd.DataFrame, BatchStats]:
    """The reference engine: one scorer in this process, a loop over slices of ``rows``."""
    t0 = time.perf_counter()
    scorer = BatchScorer(spec)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    parts = [scorer(rows.iloc[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    secs = time.perf_counter() - t1
    out, compute = _compute_time(out)
    return out, BatchStats("pandas", len(rows), len(parts), batch_size, 1, round(secs, 4), round(len(rows) / secs, 1) if secs > 0 else 0.0,
                           round(setup, 3), {"compute_seconds": round(compute, 4)})


def score_with_ray(rows: pd.DataFrame, spec: ScorerSpec, batch_size: int, workers: int, in_session: bool = False) -> tuple[pd.DataFrame, BatchStats]:
    """Ray Data ``map_batches`` over ``rows`` with ``workers`` actors, each a :class:`BatchScorer` (one CPU each).

    Starts a private local Ray for the call unless ``in_session`` (the caller holds one, e.g. a benchmark that
    scores several times in one session).
    """
    import contextlib

    from kindml.model.train import ray_session

    t0 = time.perf_counter()
    # one CPU per actor plus one for Ray Data's own tasks: with exactly `workers` CPUs the actors can starve them
    ctx = contextlib.nullcontext() if in_session else ray_session(max(workers, 1) + 1)
    with ctx:
        import ray.data

        setup = time.perf_counter() - t0
        data_ctx = ray.data.DataContext.get_current()
        data_ctx.enable_progress_bars = False
        data_ctx.print_on_execution_start = False
        t1 = time.perf_counter()
        n_blocks = max(1, min(_batches(len(rows), batch_size), workers * 4))
        bounds = [round(i * len(rows) / n_blocks) for i in range(n_blocks + 1)]
        ds = ray.data.from_pandas([rows.iloc[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])  # n blocks: every actor gets work
        scored = ds.map_batches(BatchScorer, fn_constructor_args=(spec,), batch_size=batch_size, batch_format="pandas",
                                compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, zero_copy_batch=False)
        out = plain_columns(scored.to_pandas())
        secs = time.perf_counter() - t1
    out, compute = _compute_time(out)
    # steady state: the scorers' own time, spread over the actors (what a long batch approaches once the actors run)
    steady = len(rows) / (compute / workers) if compute > 0 else 0.0
    return out, BatchStats("ray_data", len(rows), _batches(len(rows), batch_size), batch_size, workers, round(secs, 4),
                           round(len(rows) / secs, 1) if secs > 0 else 0.0, round(setup, 3),
                           {"blocks": n_blocks, "compute_seconds": round(compute, 4), "steady_rows_per_s": round(steady, 1)})
