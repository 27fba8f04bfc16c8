"""The fraud predictor: a ``kserve.Model`` serving the registered ONNX model with ONNX Runtime.

Request → validated columns (``schema``) → Feast online features by
``account_id``/``merchant_id`` (``online``) unless the rows carry them →
the SAME ``Assembler`` as training → ONNX Runtime → score, decision and the
model version. The drift monitor sees every scored batch (bounded windows);
request counts and latencies are exported on the ModelServer's ``/metrics``.

Unknown ``account_id`` (no fresh row in the online store): scored with the
documented "no history" defaults, counted in ``kindml_unknown_accounts_total``
and flagged ``account_known: false`` in the answer — a new account is a
legitimate transaction, so it is never a 404.
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

from kindml.serving.schema import RequestError, parse_instances, v2_to_instances

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    """A model version's files on disk: model.onnx, preprocessing.json, optional reference_profile.json and version.json."""

    folder: Path
    name: str
    version: str

    @classmethod
    def from_folder(cls, folder: Path, name: str | None = None, version: str | None = None) -> ModelBundle:
        from kindml.errors import ServingError

        folder = Path(folder)
        if not (folder / "model.onnx").is_file() or not (folder / "preprocessing.json").is_file():
            raise ServingError(f"{folder} does not hold model.onnx and preprocessing.json",
                               "Point --model-dir at a folder exported by kindml, or use --model NAME@VERSION from the registry.")
        meta = {}
        if (folder / "version.json").is_file():
            meta = json.loads((folder / "version.json").read_text(encoding="utf-8"))
        return cls(folder=folder, name=name or meta.get("name", "fraud-detector"), version=str(version or meta.get("version", "0")))


def make_predictor(bundle: ModelBundle, features: Any | None, threshold: float = 0.5, monitor: Any | None = None,
                   drift_enabled: bool = True) -> Any:
    """The kserve.Model subclass is defined here, not at module level, so importing this module stays cheap."""
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    from kindml.model.export import onnx_session
    from kindml.model.preprocess import Assembler, PreprocessingSpec
    from kindml.monitoring import metrics as mm
    from kindml.serving.monitored import monitored_columns

    class _FraudPredictor(kserve.Model):
        def __init__(self) -> None:
            super().__init__(bundle.name)
            self.bundle = bundle
            self.features = features
            self.threshold = threshold
            self.monitor = monitor if drift_enabled else None
            if self.monitor is not None:
                mm.register_monitor(self.monitor)
            self.session: Any = None
            self.assembler: Assembler | None = None

        def load(self) -> bool:
            spec = PreprocessingSpec.load(bundle.folder / "preprocessing.json")
            self.assembler = Assembler(spec)
            self.session = onnx_session(bundle.folder / "model.onnx", threads=1)
            self._input = self.session.get_inputs()[0].name
            # warm the graph (first run allocates)
            self.session.run(None, {self._input: np.zeros((1, self.assembler.n_inputs), dtype=np.float32)})
            self.ready = True
            return True

        def score_columns(self, cols: dict[str, np.ndarray], with_features: bool) -> dict[str, Any]:
            assert self.assembler is not None
            n = len(cols["amount"])
            degraded = False
            if with_features:
                account_known = np.isfinite(cols["txn_count_30d"]) | np.isfinite(cols["account_age_days"])
            elif self.features is not None:
                found = self.features.lookup(cols["account_id"], cols["merchant_id"])
                cols = {**cols, **found.columns}
                account_known = found.account_known
                degraded = found.degraded
                if degraded:
                    mm.count_online_store_error(bundle.name, bundle.version)
            else:
                account_known = np.zeros(n, dtype=bool)
            unknown = int((~account_known).sum())
            if unknown:
                mm.count_unknown_accounts(bundle.name, bundle.version, unknown)
            x = self.assembler.transform(cols)
            scores = self.session.run(None, {self._input: x})[0].reshape(-1).astype(np.float64)
            if self.monitor is not None:
                numeric, categorical = monitored_columns(self.assembler.spec.inputs, x, cols)
                numeric["amount"] = cols["amount"]
                self.monitor.observe(numeric, categorical, scores)
            return {"scores": scores, "account_known": account_known, "degraded": degraded}

        async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None) -> Any:
            t0 = time.perf_counter()
            try:
                if isinstance(payload, InferRequest):
                    instances = v2_to_instances(payload.inputs)
                    v2 = True
                elif isinstance(payload, dict):
                    if "instances" not in payload:
                        raise RequestError('the body needs "instances": [{...transaction...}, ...] (v1) — or use /v2/models/<name>/infer')
                    instances = payload["instances"]
                    v2 = False
                else:
                    raise RequestError("the body must be a JSON object")
                cols, with_features = parse_instances(instances)
                out = self.score_columns(cols, with_features)
            except RequestError as exc:
                mm.record_request(bundle.name, bundle.version, "400", time.perf_counter() - t0)
                raise InvalidInput(str(exc)) from None
            except Exception:
                mm.record_request(bundle.name, bundle.version, "500", time.perf_counter() - t0)
                log.exception("scoring failed")
                raise
            scores = out["scores"]
            decisions = scores >= self.threshold
            mm.record_request(bundle.name, bundle.version, "200", time.perf_counter() - t0)
            if v2:
                outputs = [
                    InferOutput(name="score", shape=[len(scores)], datatype="FP64", data=scores.tolist()),
                    InferOutput(name="decision", shape=[len(scores)], datatype="BOOL", data=decisions.tolist()),
                    InferOutput(name="account_known", shape=[len(scores)], datatype="BOOL", data=out["account_known"].tolist()),
                ]
                return InferResponse(model_name=bundle.name, model_version=bundle.version, infer_outputs=outputs,
                                     response_id=payload.id or str(uuid.uuid4()), parameters={"degraded": out["degraded"]})
            preds = [{"score": round(float(s), 6), "decision": bool(d), "fraud": bool(d), "account_known": bool(k)}
                     for s, d, k in zip(scores, decisions, out["account_known"], strict=True)]
            return {"predictions": preds, "model_name": bundle.name, "model_version": bundle.version, "degraded": out["degraded"]}

    return _FraudPredictor()
