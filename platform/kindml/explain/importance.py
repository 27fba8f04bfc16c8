"""The global importance of a model version: mean |Shapley value| per player over holdout rows.

Computed by the export stage on the exported (served) ONNX model, stored as
``importance.json`` in the bundle — so it is registered with the version —
and compared between this run's version and the champion in the run report.

For every sampled holdout row the interventional game of
:mod:`kindml.explain.shapley` is played over the kit's players (for text kits
the whole text is one more player), with ``importance_background`` background
rows and ``importance_samples`` orders; a player's importance is the mean of
|its value| over the rows: "how far, on average, this input moves the explained
output" (the score, or the probability of the predicted class), in output units.
``share`` is that importance over the sum of all players'.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kindml.explain.spec import IMPORTANCE_FILE, ExplanationError

if TYPE_CHECKING:
    import pandas as pd

    from kindml.explain.explainer import Explainer

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def global_importance(explainer: Explainer, frame: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """The importance document of ``explainer``'s model on rows of ``frame`` (holdout rows, with labels or not)."""
    from kindml.model.kit import frame_columns

    spec = explainer.spec
    if len(frame) == 0:
        raise ExplanationError("no holdout rows to compute the global importance on", "The export stage needs the holdout split.")
    t0 = time.perf_counter()
    sample = frame.sample(n=min(spec.importance_rows, len(frame)), random_state=seed).reset_index(drop=True)
    cols = {**frame_columns(sample), **frame_columns(spec.rows(sample))}
    names, values, model_rows = explainer.row_attributions(cols, len(sample), spec.importance_background, spec.importance_samples)
    mean_abs = np.abs(values).mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    groups = dict(spec.players(with_text=True))
    players = [{"name": n, "columns": groups[n], "mean_abs": round(float(a), 6), "mean": round(float(m), 6), "share": round(float(a) / total, 4)}
               for n, a, m in zip(names, mean_abs, values.mean(axis=0), strict=True)]
    players.sort(key=lambda p: -p["mean_abs"])
    probs = explainer.outputs(cols)
    return {
        "schema_version": SCHEMA_VERSION,
        "method": "mean |Shapley value| per player (interventional, captum ShapleyValueSampling on the served ONNX model)",
        "target": "score" if probs.ndim == 1 else "probability of the predicted class",
        "rows": len(sample),
        "background_rows": min(spec.importance_background, len(next(iter(explainer.background.values())))) if explainer.background else 0,
        "samples": spec.importance_samples,
        "seed": seed,
        "model_rows": int(model_rows),
        "seconds": round(time.perf_counter() - t0, 3),
        "players": players,
    }


def save_importance(doc: dict[str, Any], folder: Path) -> Path:
    path = Path(folder) / IMPORTANCE_FILE
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def load_importance(path: Path) -> dict[str, Any]:
    """Read and check an ``importance.json``; an :class:`ExplanationError` naming the file when it is not one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExplanationError(f"cannot read the importance file {path}: {exc}", "It is written by the export stage; re-export the model.") from exc
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION or not isinstance(doc.get("players"), list):
        raise ExplanationError(f"{path} is not an importance file of schema version {SCHEMA_VERSION}",
                               "It is written by the export stage; re-export the model with this kindml.")
    for p in doc["players"]:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not isinstance(p.get("mean_abs"), int | float):
            raise ExplanationError(f"{path}: a player entry has no name or mean_abs: {str(p)[:80]}", "Re-export the model.")
    return doc


def compare(current: dict[str, Any], other: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per player of either document: importance and rank in each, the change; ``current``'s order first."""
    cur = {p["name"]: (i + 1, p) for i, p in enumerate(current.get("players") or [])}
    oth = {p["name"]: (i + 1, p) for i, p in enumerate((other or {}).get("players") or [])}
    rows = []
    for name in [*cur, *(n for n in oth if n not in cur)]:
        c, o = cur.get(name), oth.get(name)
        a = c[1]["mean_abs"] if c else None
        b = o[1]["mean_abs"] if o else None
        rows.append({"name": name, "current": a, "current_rank": c[0] if c else None, "other": b, "other_rank": o[0] if o else None,
                     "delta": (a - b) if a is not None and b is not None else None,
                     "current_share": c[1].get("share") if c else None, "other_share": o[1].get("share") if o else None})
    return rows


def registered_importance(tracking_uri: str, name: str, version: str) -> dict[str, Any] | None:
    """The ``importance.json`` registered with model ``name`` version ``version``, or None when it has none."""
    from kindml.registry import mlflow_env

    with mlflow_env(tracking_uri) as mlflow, tempfile.TemporaryDirectory() as tmp:
        for sub in (f"extra_files/{IMPORTANCE_FILE}", IMPORTANCE_FILE):
            try:
                local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}/{sub}", dst_path=tmp)
            except Exception as exc:  # the version predates explanations, or the file sits elsewhere
                log.debug("no %s for %s v%s: %s", sub, name, version, exc)
                continue
            return load_importance(Path(local))
    return None
