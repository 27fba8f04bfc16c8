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
    shared_dir: str | None = None
    """Folder of the files every worker shares (None: one worker, state in process memory)."""

    @property
    def shared_window(self) -> Path | None:
        return Path(self.shared_dir) / DRIFT_WINDOW_FILE if self.shared_dir else None


def build_predictor(spec: PredictorSpec) -> Any:
    """The kserve.Model for ``spec`` (not loaded yet: KServe's ModelServer or :func:`rebuild_predictor` calls ``load``)."""
    from kindml.serving.bundle import profile_path
    from kindml.serving.online import features_for
    from kindml.serving.predictor import make_predictor
    from kindml.workload.loader import instantiate

    bundle = spec.bundle
    kit = instantiate(bundle.workload, spec.config).model_kit()
    monitor = None
    prof = profile_path(bundle)
    if prof is not None and spec.drift:
        from kindml.monitoring.drift import DriftMonitor
        from kindml.monitoring.profile import load_profile

        monitor = DriftMonitor(load_profile(prof), bundle.name, bundle.version, window=spec.window, shared=spec.shared_window)
    features = features_for(spec.config, spec.workspace, bundle.feature_service) if bundle.feature_service else None
    return make_predictor(bundle, kit, features, monitor, drift_enabled=spec.drift, spec=spec)


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
