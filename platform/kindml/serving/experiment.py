"""One endpoint, two model versions: the predictor of a running A/B, canary or shadow experiment.

Built by :func:`kindml.serving.launch.build_predictor` when the workspace holds
a running experiment record (:mod:`kindml.experiments.live`) for the served
champion. Every row is routed by its entity (the signature's first entity
key; hash of the id and the experiment's salt, :func:`kindml.experiments.assignment.route`):

- ``ab`` / ``canary``: the entity's arm scores and answers the row;
- ``shadow``: the champion answers every row; for the challenger's share of
  entities the challenger scores the same row too, and its prediction is only
  logged (as ``<prediction_id>.s``, labelled by the answer's outcome).

Every logged prediction carries ``variant`` and ``experiment``; per-variant
rows, scoring latency and score distribution are exported
(``kindml_experiment_*``). A background thread takes the experiment's
sequential look over the labelled outcomes every ``look_s`` seconds
(:func:`kindml.experiments.live.evaluate`); acting on a final decision is the
CLI's (``kindml experiment status``) or ``kindml monitor watch``'s.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from kindml.serving.signature import Parsed, RequestError

log = logging.getLogger(__name__)

LOOK_S = 10.0


def _take(parsed: Parsed, idx: np.ndarray) -> Parsed:
    return Parsed(columns={k: np.asarray(v)[idx] for k, v in parsed.columns.items()}, n=len(idx), lookup=parsed.lookup)


def make_experiment_predictor(champion: Any, challenger: Any, record: dict[str, Any], recorder: Any, serving_dir: Path,
                              spec: Any | None = None, look_s: float = LOOK_S) -> Any:
    """A kserve.Model under the champion's name that routes each row to ``champion`` or ``challenger`` (two predictors of
    :func:`kindml.serving.predictor.make_predictor`, same workload) as the experiment ``record`` says."""
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferResponse

    from kindml.experiments.assignment import assign_many
    from kindml.experiments.spec import parse_spec
    from kindml.monitoring import metrics as mm
    from kindml.serving import oip
    from kindml.serving.predictor import PREDICTION_ID

    xspec = parse_spec(record["state"]["spec"], "experiment record")
    name = record["name"]
    sig = champion.signature
    key = record.get("entity_field") or (sig.entity_keys[0] if sig.entity_keys else None)
    if key is None:
        from kindml.errors import ServingError

        raise ServingError(f"experiment {name!r}: the model's requests carry no entity key to assign by",
                           "A/B experiments need a signature with an entity key (the workload's serving signature).")
    versions = {"champion": champion.bundle.version, "challenger": challenger.bundle.version}
    model_name = champion.bundle.name

    class _Experiment(kserve.Model):
        def __init__(self) -> None:
            super().__init__(model_name)
            self.bundle = champion.bundle
            self.model_version = champion.bundle.version
            self.spec = spec
            self.signature = sig
            self.recorder = recorder
            self.features = champion.features
            self.arms = {"champion": champion, "challenger": challenger}
            self.experiment = name
            self._stop = threading.Event()

        def load(self) -> bool:
            champion.load()
            challenger.load()
            mm.init_variants(model_name, name, tuple(versions))
            threading.Thread(target=self._looks, name=f"kindml-experiment-{name}", daemon=True).start()
            self.ready = True
            return True

        def _looks(self) -> None:
            from kindml.experiments.live import evaluate

            while not self._stop.wait(look_s):
                try:
                    rec = evaluate(serving_dir, recorder.log)
                except Exception:
                    log.exception("experiment %s: the look failed", name)
                    continue
                if rec is None or rec.get("name") != name or rec.get("status") != "running":
                    return

        def stop(self) -> None:
            self._stop.set()

        def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # workers > 1: rebuilt from the spec (which names the challenger)
            from kindml.errors import ServingError
            from kindml.serving.launch import PendingPredictor

            if self.spec is None:
                raise ServingError("this experiment predictor cannot be copied into another worker (built without a PredictorSpec)",
                                   "Start it with `kindml serve run --workers N`.")
            return PendingPredictor, (self.spec,)

        def get_input_types(self) -> list[dict[str, Any]]:
            return champion.get_input_types()

        def get_output_types(self) -> list[dict[str, Any]]:
            return [*champion.get_output_types(), {"name": "variant", "datatype": "BYTES", "shape": [-1]}]

        async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            return await champion.explain(payload, headers)

        def _score(self, arm: str, parsed: Parsed) -> tuple[np.ndarray, Any, bool]:
            t0 = time.perf_counter()
            probs, known, degraded = self.arms[arm].score(parsed)
            mm.record_variant(model_name, name, arm, parsed.n, time.perf_counter() - t0, sig.score(probs))
            return probs, known, degraded

        async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None) -> Any:
            t0 = time.perf_counter()
            try:
                parsed, v2 = oip.parse_request(payload, sig, (PREDICTION_ID, "variant"))
                if key not in parsed.columns:
                    raise RequestError(f"every {sig.row_name} needs {key!r}: an experiment assigns by it")
                entities = np.asarray(parsed.columns[key])
                to_challenger = assign_many(entities.tolist(), xspec.salt, xspec.challenger_share)
                answering = np.where(to_challenger & (xspec.mode != "shadow"), "challenger", "champion")
                rows: list[dict[str, Any] | None] = [None] * parsed.n
                columns: dict[str, list[Any]] = {}
                dtypes: dict[str, str] = {}
                ids = [""] * parsed.n
                degraded_any = False
                for arm in ("champion", "challenger"):
                    idx = np.flatnonzero(answering == arm)
                    if len(idx) == 0:
                        continue
                    sub = _take(parsed, idx)
                    probs, known, degraded = self._score(arm, sub)
                    degraded_any |= degraded
                    answer = sig.respond(sub, probs, known)
                    arm_ids = recorder.record(model_name, versions[arm], probs, variant=arm, experiment=name,
                                              entities=entities[idx].tolist()) if recorder else [uuid.uuid4().hex for _ in idx]
                    for j, i in enumerate(idx):
                        ids[i] = arm_ids[j]
                        rows[i] = {**answer.predictions[j], "variant": arm, "model_version": versions[arm]}
                    for out_name, dtype, values in answer.outputs:
                        dtypes[out_name] = dtype
                        col = columns.setdefault(out_name, [None] * parsed.n)
                        for j, i in enumerate(idx):
                            col[i] = values[j]
                if xspec.mode == "shadow" and to_challenger.any():
                    idx = np.flatnonzero(to_challenger)
                    probs, _, _ = self._score("challenger", _take(parsed, idx))
                    if recorder is not None:
                        recorder.record(model_name, versions["challenger"], probs, variant="challenger", experiment=name,
                                        entities=entities[idx].tolist(), parents=[ids[i] for i in idx])
            except RequestError as exc:
                mm.record_request(model_name, champion.bundle.version, "400", time.perf_counter() - t0)
                raise InvalidInput(str(exc)) from None
            except Exception:
                mm.record_request(model_name, champion.bundle.version, "500", time.perf_counter() - t0)
                log.exception("scoring failed")
                raise
            mm.record_request(model_name, champion.bundle.version, "200", time.perf_counter() - t0)
            for row, pid in zip(rows, ids, strict=True):
                assert row is not None
                row[PREDICTION_ID] = pid
            if v2:
                named = [*((k, dtypes[k], v) for k, v in columns.items()), (PREDICTION_ID, "BYTES", ids),
                         ("variant", "BYTES", [r["variant"] for r in rows if r is not None])]
                wanted = {o.name for o in payload.request_outputs or []}
                outputs = [InferOutput(name=n, shape=[len(v)], datatype=d, data=v) for n, d, v in named if not wanted or n in wanted]
                return InferResponse(model_name=model_name, model_version=champion.bundle.version, infer_outputs=outputs,
                                     response_id=payload.id or str(uuid.uuid4()),
                                     parameters={"degraded": degraded_any, "experiment": name},
                                     use_binary_outputs=bool(payload.use_binary_outputs), requested_outputs=payload.request_outputs)
            return {"predictions": rows, "model_name": model_name, "model_version": champion.bundle.version,
                    "experiment": name, "degraded": degraded_any}

    return _Experiment()


# --------------------------------------------------------------------------- starting one (CLI and deploy stage)

METRICS = ("accuracy", "catch_rate", "false_alarm_rate", "auc")


def default_metric(task: str) -> str:
    """The decision metric when none is named: AUC for a binary model (labelled positives are rare), else accuracy."""
    return "auc" if task == "binary" else "accuracy"


def spec_data(task: str, champion_folder: Path, *, mode: str = "ab", split: float | None = None, metric: str | None = None,
              baseline: float | None = None, mde: float = 0.05, min_samples: int = 200) -> dict[str, Any]:
    """An experiment spec (without name and salt) from a few choices; the baseline defaults to the champion's holdout value."""
    import json

    from kindml.errors import UsageError
    from kindml.serving.outcomes import reference_of

    metric = metric or default_metric(task)
    if metric not in METRICS:
        raise UsageError(f"unknown experiment metric {metric!r}", f"Use one of {', '.join(METRICS)}, or pass a full --spec file.")
    if baseline is None:
        ref = reference_of(champion_folder)
        key = {"auc": "roc_auc"}.get(metric, metric)
        if key not in ref:
            raise UsageError(f"the champion has no holdout {metric} to start the experiment from",
                             "Pass --baseline (the champion's expected value of the metric), or choose --metric auc/accuracy.")
        baseline = ref[key]
    m: dict[str, Any] = {"name": metric, "kind": "auc" if metric == "auc" else "rate", "baseline": baseline,
                         "direction": "decrease" if metric == "false_alarm_rate" else "increase"}
    if metric == "auc":
        metrics = json.loads((Path(champion_folder) / "metrics.json").read_text(encoding="utf-8"))
        m["prevalence"] = float(metrics["positives"]) / float(metrics["rows"])
    return {"mode": mode, "split": split, "metric": m, "mde": mde, "min_samples": min_samples}


def begin(cfg: Any, ws: Any, champion: Any, challenger: Any, data: dict[str, Any], started_by: str,
          run_id: str | None = None) -> dict[str, Any]:
    """Write the running experiment record of ``champion`` vs ``challenger`` (two :class:`ModelBundle`); name and salt filled in."""
    import secrets
    import time as _time

    from kindml.errors import UsageError
    from kindml.experiments import live
    from kindml.workload.loader import instantiate

    wl = instantiate(champion.workload, cfg)
    kit = wl.model_kit().load(champion.folder)
    sig = kit.signature()
    if not sig.entity_keys:
        raise UsageError(f"{champion.name}'s requests carry no entity key to assign by", "Experiments need a signature with an entity key.")
    data = dict(data)
    data.setdefault("name", f"{champion.name}-v{challenger.version}-{_time.strftime('%Y%m%d%H%M%S')}".lower())
    data.setdefault("salt", secrets.token_hex(16))
    data.setdefault("champion", f"{champion.name}@{champion.version}")
    data.setdefault("challenger", f"{challenger.name}@{challenger.version}")
    return live.start(ws.serving, data, model=champion.name, task=wl.task, threshold=float(getattr(kit, "threshold", 0.5) or 0.5),
                      champion={"version": champion.version, "dir": str(champion.folder)},
                      challenger={"version": challenger.version, "dir": str(challenger.folder)},
                      entity_field=sig.entity_keys[0], started_by=started_by, run_id=run_id)
