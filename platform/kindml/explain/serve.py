"""KServe's ``:explain`` route: ``POST /v1/models/<name>:explain`` with the same body as ``:predict``.

The predictor (:mod:`kindml.serving.predictor`) builds an explainer when it
loads a bundle (:func:`load_explainer`: reads the stored background; torch and
captum load on the first explanation) and hands each request to
:func:`explain_payload`. The request is parsed by the same signature (the same
400 messages), the same online features are looked up, and each row (at most
:data:`~kindml.explain.explainer.MAX_ROWS`) gets its attributions::

    {"instances": [{...}, ...], "target": "refund_request"}      # target: optional, multiclass only
    → {"explanations": [{"target": "refund_request", "prediction": 0.91, "base_value": 0.17,
                         "players": "words", "attributions": [{"word": "refund", "attribution": 0.52}, ...],
                         "inputs": {...}, "method": "...", "model_rows": 131}, ...],
       "degraded": false}

Explanations do not feed the drift monitor and are not counted as predictions.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from kindml.explain.explainer import Explainer
from kindml.explain.spec import ExplanationError
from kindml.serving.signature import RequestError

log = logging.getLogger(__name__)

BODY_KEYS = ("instances", "target")


def load_explainer(folder: Path, kit: Any, session: Any, warm: bool = False) -> Explainer | None:
    """The explainer of a served bundle, or None (logged: ``:explain`` then answers 501) when the version has none —
    exported before explanations existed, its kit declares none, or captum is not installed.

    Cheap: reads the background sample only. torch and captum (+~230 MiB RSS, 2-3 s of CPU) load at the first
    explanation, or at once in a background thread with ``warm``."""
    if kit.explanation() is None:
        log.info("model kit %s declares no explanation: :explain answers 501", type(kit).__name__)
        return None
    if importlib.util.find_spec("captum") is None:
        log.warning("captum is not installed: :explain answers 501 (pip install 'kindml[explain]')")
        return None
    try:
        explainer = Explainer.from_bundle(Path(folder), kit, session)
    except ExplanationError as exc:
        log.warning("no explanations for %s: %s (%s)", folder, exc.message, exc.hint)
        return None
    if warm:
        threading.Thread(target=importlib.import_module, args=("captum.attr",), name="kindml-explain-warm", daemon=True).start()
    return explainer


def request_columns(signature: Any, parsed: Any, features: Any | None) -> tuple[dict[str, np.ndarray], bool]:
    """The parsed columns plus the online features, exactly as the predictor scores them; and whether the store was down."""
    cols = dict(parsed.columns)
    if not signature.entity_keys or not parsed.lookup or features is None:
        return cols, False
    found = features.lookup({k: cols[k] for k in signature.entity_keys})
    return {**cols, **found.columns}, bool(found.degraded)


def explain_payload(payload: Any, signature: Any, explainer: Explainer | None, features: Any | None = None) -> dict[str, Any]:
    """Answer one ``:explain`` request; a :class:`RequestError` (HTTP 400) for anything the caller can fix,
    ``NotImplementedError`` (HTTP 501) when the served version has no explanations."""
    if explainer is None:
        raise NotImplementedError("this model version has no explanations here (the predictor's log says why: no "
                                  "explain_background.parquet in the bundle — re-export it —, a model kit without explanation(), "
                                  "or captum not installed — pip install 'kindml[explain]')")
    target = None
    if isinstance(payload, dict):
        unknown = [k for k in payload if k not in BODY_KEYS]
        if unknown:
            raise RequestError(f"unknown key(s) in the body: {', '.join(map(str, unknown[:5]))}; "
                               '":explain" takes {"instances": [...], "target": "<class>" (optional)}')
        if "instances" not in payload:
            raise RequestError(f'the body needs "instances": [{{...{signature.row_name}...}}, ...] — the same rows as :predict')
        target = payload.get("target")
        instances = payload["instances"]
        if isinstance(instances, list) and len(instances) > explainer.max_rows:
            raise RequestError(f'"instances" has {len(instances)} rows; :explain takes at most {explainer.max_rows} per request '
                               "(each row costs hundreds of model evaluations) — send the rows you want explained")
        parsed = signature.parse_v1(instances)
    elif hasattr(payload, "inputs"):  # an Open Inference Protocol body decoded by KServe
        parsed = signature.parse_v2(payload.inputs)
        target = (getattr(payload, "parameters", None) or {}).get("target")
    else:
        raise RequestError("the body must be a JSON object")
    if target is not None and not isinstance(target, str):
        raise RequestError(f'"target" must be a class name (a string), got {type(target).__name__}')
    cols, degraded = request_columns(signature, parsed, features)
    explanations = explainer.explain(cols, parsed.n, target)
    for i, e in enumerate(explanations):
        if e["players"] == "columns":
            e["inputs"] = {c: _plain(cols[c][i]) if c in cols else None for _, cs in explainer.spec.players() for c in cs}
    return {"explanations": explanations, "degraded": degraded}


def _plain(v: Any) -> Any:
    """A JSON-safe value: numpy scalars as Python numbers, NaN (an unknown feature) as null."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v if isinstance(v, str | int | float | bool) or v is None else str(v)
