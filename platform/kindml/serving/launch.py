"""Build the predictor of ``kindml serve run`` from a bundle — in the server process and in every KServe worker.

With ``workers > 1`` KServe 0.21 starts each uvicorn worker with
``multiprocessing``'s *spawn* context and pickles the registered models into
it (``kserve/protocol/rest/multiprocess/server.py``). An ONNX Runtime session,
a Feast store or a tokenizer cannot be pickled, so the predictor pickles as a
:class:`PendingPredictor` (its :class:`PredictorSpec`), and kindml's REST
server builds the real one in the worker before serving
(:func:`materialize`). Not while unpickling: KServe's parent pings a worker
and replaces it when it has not answered within 5 s of its start, and the
build (Feast, ONNX Runtime, the kit) takes longer than that. What must be the same in every worker is shared
through files in one folder (``PROMETHEUS_MULTIPROC_DIR``): prometheus_client's
per-process counter files and the drift window
(:class:`kindml.monitoring.drift.DriftMonitor` with ``shared=``), so
``/metrics`` reports the whole server whichever worker answers the scrape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DRIFT_WINDOW_FILE = "kindml_drift_window.bin"


@dataclass(frozen=True)
class PredictorSpec:
    """Everything needed to build a predictor again, in plain picklable values."""

    bundle: Any
    """The :class:`~kindml.serving.predictor.ModelBundle`."""
    config: Any
    """The workload's effective :class:`~kindml.config.KindmlConfig`."""
    workspace: Any
    """The :class:`~kindml.workspace.Workspace` (the local Feast repo, Redis)."""
    window: int = 5000
    drift: bool = True
    challenger: Any = None
    """A running experiment's challenger :class:`~kindml.serving.predictor.ModelBundle` (with ``experiment``)."""
    experiment: dict[str, Any] | None = None
    """The running experiment's record (:mod:`kindml.experiments.live`): routing, salt, variants."""
    log_predictions: bool = True
    """Give every answered row a prediction_id and log it (``<workspace>/serving/predictions.db``) for delayed labels."""
    shared_dir: str | None = None
    """Folder of the files every worker shares (None: one worker, state in process memory)."""

    @property
    def shared_window(self) -> Path | None:
        return Path(self.shared_dir) / DRIFT_WINDOW_FILE if self.shared_dir else None


def build_predictor(spec: PredictorSpec) -> Any:
    """The kserve.Model for ``spec`` (not loaded yet: KServe's ModelServer or :func:`rebuild_predictor` calls ``load``).

    With ``spec.challenger`` and ``spec.experiment`` (a running experiment's record): one endpoint routing between the
    two versions (:mod:`kindml.serving.experiment`)."""
    from kindml.serving.online import features_for
    from kindml.serving.predictor import make_predictor
    from kindml.workload.loader import instantiate

    bundle = spec.bundle
    wl = instantiate(bundle.workload, spec.config)
    features = features_for(spec.config, spec.workspace, bundle.feature_service) if bundle.feature_service else None
    log_dir = Path(spec.workspace.serving) if spec.log_predictions else None
    if spec.challenger is None or spec.experiment is None:
        return make_predictor(bundle, wl.model_kit(), features, _monitor(spec, bundle, spec.shared_window), drift_enabled=spec.drift,
                              spec=spec, task=wl.task, log_dir=log_dir)
    from kindml.serving.experiment import make_experiment_predictor
    from kindml.serving.outcomes import recorder_for

    window = spec.shared_window
    champion = make_predictor(bundle, wl.model_kit(), features, _monitor(spec, bundle, window), drift_enabled=spec.drift)
    challenger = make_predictor(spec.challenger, wl.model_kit(), features,
                                _monitor(spec, spec.challenger, window.with_name(window.name + ".challenger") if window else None),
                                drift_enabled=spec.drift)
    recorder = recorder_for(wl.task, champion.kit, log_dir) if log_dir is not None else None
    if recorder is not None:
        from kindml.serving.outcomes import reference_of

        recorder.register(bundle.name, bundle.version, reference_of(bundle.folder))
        recorder.register(bundle.name, spec.challenger.version, reference_of(spec.challenger.folder))
    return make_experiment_predictor(champion, challenger, spec.experiment, recorder, Path(spec.workspace.serving), spec=spec)


def _monitor(spec: PredictorSpec, bundle: Any, shared: Path | None) -> Any:
    from kindml.serving.bundle import profile_path

    prof = profile_path(bundle)
    if prof is None or not spec.drift:
        return None
    from kindml.monitoring.drift import DriftMonitor
    from kindml.monitoring.profile import load_profile

    return DriftMonitor(load_profile(prof), bundle.name, bundle.version, window=spec.window, shared=shared)


class PendingPredictor:
    """A predictor on its way into a worker process: only its spec, built by :func:`materialize`."""

    def __init__(self, spec: PredictorSpec) -> None:
        self.spec = spec
        self.name = spec.bundle.name
        self.ready = False


def materialize(registry: Any) -> None:
    """Replace every :class:`PendingPredictor` of a KServe ``ModelRepository`` with the loaded predictor it describes."""
    for key, model in list(registry.get_models().items()):
        if isinstance(model, PendingPredictor):
            predictor = build_predictor(model.spec)
            predictor.load()
            registry.update(predictor, key)
