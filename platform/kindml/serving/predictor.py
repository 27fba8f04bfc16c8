"""The predictor: a ``kserve.Model`` serving a registered ONNX model of any workload with ONNX Runtime.

Request → the kit's signature validates it (v1 ``instances`` or v2 ``inputs``) →
Feast online features for the signature's entity keys (unless the rows carry
them) → the SAME preprocessing as training (``kit.feeds``) → ONNX Runtime →
the signature's answer with the model version. The drift monitor sees every
scored batch (bounded windows); request counts and latencies are exported on
the ModelServer's ``/metrics``.

An entity without fresh online features (a new account, a new customer) is
scored with the kit's documented defaults, counted in
``kindml_unknown_entities_total{entity=...}`` and flagged by the signature's
answer — a new entity is legitimate traffic, so it is never a 404.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kindml.serving.signature import RequestError

log = logging.getLogger(__name__)

WORKLOAD_FILE = "workload.json"
PREDICTION_ID = "prediction_id"
"""The id of each answered row (v1: a field of every prediction; v2: an output), for ``POST /v1/feedback``."""


@dataclass
class ModelBundle:
    """A model version's files on disk: model.onnx, the kit's preprocessing files, workload.json, optional
    reference_profile.json, examples.json and version.json."""

    folder: Path
    name: str
    version: str
    workload: str
    feature_service: str | None = None

    @classmethod
    def from_folder(cls, folder: Path, name: str | None = None, version: str | None = None, workload: str | None = None) -> ModelBundle:
        from kindml.errors import ServingError

        folder = Path(folder)
        if not (folder / "model.onnx").is_file():
            raise ServingError(f"{folder} does not hold model.onnx",
                               "Point --model-dir at a folder exported by kindml, or use --model NAME@VERSION from the registry.")
        info: dict[str, Any] = {}
        if (folder / WORKLOAD_FILE).is_file():
            info = json.loads((folder / WORKLOAD_FILE).read_text(encoding="utf-8"))
        ref = workload or info.get("workload")
        if not ref:
            raise ServingError(f"{folder} has no {WORKLOAD_FILE} naming its workload",
                               "Re-export the model with kindml, or pass --workload REF (the module or .py file of its workload).")
        meta = {}
        if (folder / "version.json").is_file():
            meta = json.loads((folder / "version.json").read_text(encoding="utf-8"))
        return cls(folder=folder, name=name or meta.get("name") or info.get("model_name") or "model",
                   version=str(version or meta.get("version", "0")), workload=ref, feature_service=info.get("feature_service"))

    def examples(self) -> list[dict[str, Any]]:
        p = self.folder / "examples.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else []


def make_predictor(bundle: ModelBundle, kit: Any, features: Any | None, monitor: Any | None = None, drift_enabled: bool = True,
                   spec: Any | None = None, task: str | None = None, log_dir: Path | None = None) -> Any:
    """The kserve.Model subclass is defined here, not at module level, so importing this module stays cheap.

    ``spec`` (a :class:`kindml.serving.launch.PredictorSpec`) is how another
    process builds the same predictor: with ``workers > 1`` KServe pickles the
    model into every worker it spawns, and the predictor pickles as that spec
    (an ONNX session, a Feast store or a tokenizer do not pickle).

    ``task`` and ``log_dir`` (the workspace's serving folder): every answered
    row gets a ``prediction_id`` and is logged there for ``POST /v1/feedback``
    (:mod:`kindml.serving.outcomes`; binary, multiclass and regression tasks).
    """
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferResponse

    from kindml.model.export import onnx_session, run_onnx
    from kindml.monitoring import metrics as mm
    from kindml.serving import oip

    kit.load(bundle.folder)
    sig = kit.signature()
    recorder = None
    if task is not None and log_dir is not None:
        from kindml.serving.outcomes import recorder_for

        recorder = recorder_for(task, kit, log_dir)

    class _Predictor(kserve.Model):
        def __init__(self) -> None:
            super().__init__(bundle.name)
            self.bundle = bundle
            self.model_version = bundle.version
            self.spec = spec
            self.kit = kit
            self.signature = sig
            self.features = features
            self.monitor = monitor if drift_enabled else None
            if self.monitor is not None:
                mm.register_monitor(self.monitor)
            self.session: Any = None
            self.explainer: Any = None
            self.recorder = recorder
            if recorder is not None:
                from kindml.serving.outcomes import reference_of

                recorder.register(bundle.name, bundle.version, reference_of(bundle.folder))

        def load(self) -> bool:
            self.session = onnx_session(bundle.folder / "model.onnx", threads=1)
            examples = bundle.examples()
            if examples:  # warm the graph (the first run allocates), without touching the feature store
                parsed = sig.parse_v1(examples[:1])
                run_onnx(self.session, self.kit.feeds(parsed.columns))
            from kindml.explain.serve import load_explainer

            self.explainer = load_explainer(bundle.folder, self.kit, self.session)
            self.ready = True
            return True

        def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
            from kindml.errors import ServingError
            from kindml.serving.launch import PendingPredictor

            if self.spec is None:
                raise ServingError("this predictor cannot be copied into another worker process (it was built without a PredictorSpec)",
                                   "Start it with `kindml serve run --workers N`, which builds every worker from the bundle.")
            return PendingPredictor, (self.spec,)

        def get_input_types(self) -> list[dict[str, Any]]:
            return [{"name": k, "datatype": t, "shape": [-1]} for k, t in sig.fields.items()]

        def get_output_types(self) -> list[dict[str, Any]]:
            out = [{"name": k, "datatype": t, "shape": [-1]} for k, t in sig.outputs.items()]
            if self.recorder is not None:
                out.append({"name": PREDICTION_ID, "datatype": "BYTES", "shape": [-1]})
            return out

        async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            """KServe's ``:explain`` route: per-row feature attributions (:mod:`kindml.explain.serve`); 400 for bad input, 501 without."""
            import asyncio

            from kindml.explain.serve import explain_payload

            try:
                return await asyncio.to_thread(explain_payload, payload, sig, self.explainer, self.features)
            except RequestError as exc:
                raise InvalidInput(str(exc)) from None

        def score(self, parsed: Any) -> tuple[np.ndarray, dict[str, np.ndarray], bool]:
            cols = parsed.columns
            n = parsed.n
            degraded = False
            if not sig.entity_keys:
                known: dict[str, np.ndarray] = {}
            elif not parsed.lookup:
                known = sig.known_from_columns(cols, n)
            elif self.features is not None:
                found = self.features.lookup({k: cols[k] for k in sig.entity_keys})
                cols = {**cols, **found.columns}
                known = found.known
                degraded = found.degraded
                if degraded:
                    mm.count_online_store_error(bundle.name, bundle.version)
            else:
                known = {k: np.zeros(n, dtype=bool) for k in sig.entity_keys}
            for key, flags in known.items():
                unknown = int((~flags).sum())
                if unknown:
                    mm.count_unknown_entities(bundle.name, bundle.version, key, unknown)
            feeds, outputs = self.kit.score(self.session, cols)  # feeds → ONNX Runtime, unless the kit answers rows itself
            probs = self.kit.probabilities(outputs)
            if self.monitor is not None:
                numeric, categorical = sig.monitored(cols, feeds, outputs, probs)
                self.monitor.observe(numeric, categorical, sig.score(probs))
            return probs, known, degraded

        async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None) -> Any:
            t0 = time.perf_counter()
            try:
                parsed, v2 = oip.parse_request(payload, sig, (PREDICTION_ID,))
                probs, known, degraded = self.score(parsed)
                answer = sig.respond(parsed, probs, known)
            except RequestError as exc:
                mm.record_request(bundle.name, bundle.version, "400", time.perf_counter() - t0)
                raise InvalidInput(str(exc)) from None
            except Exception:
                mm.record_request(bundle.name, bundle.version, "500", time.perf_counter() - t0)
                log.exception("scoring failed")
                raise
            ids = self.recorder.record(bundle.name, bundle.version, probs) if self.recorder is not None else None
            mm.record_request(bundle.name, bundle.version, "200", time.perf_counter() - t0)
            if ids is not None:
                for row, pid in zip(answer.predictions, ids, strict=True):
                    row[PREDICTION_ID] = pid
            if v2:
                named = answer.outputs if ids is None else [*answer.outputs, (PREDICTION_ID, "BYTES", ids)]
                wanted = {o.name for o in payload.request_outputs or []}
                outputs = [InferOutput(name=name, shape=[len(values)], datatype=dtype, data=values) for name, dtype, values in named
                           if not wanted or name in wanted]
                # binary outputs when the client asks (binary_data_output, or binary_data per requested output)
                return InferResponse(model_name=bundle.name, model_version=bundle.version, infer_outputs=outputs,
                                     response_id=payload.id or str(uuid.uuid4()), parameters={"degraded": degraded},
                                     use_binary_outputs=bool(payload.use_binary_outputs), requested_outputs=payload.request_outputs)
            return {"predictions": answer.predictions, "model_name": bundle.name, "model_version": bundle.version, "degraded": degraded}

    return _Predictor()
