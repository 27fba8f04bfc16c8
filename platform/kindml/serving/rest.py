"""kindml's REST server: KServe 0.21's ``RESTServer`` with the bind host, the JSON guard and the routes KServe leaves out.

What it changes, without forking KServe (a subclass KServe's ``ModelServer``
is pointed at):

- uvicorn binds ``bind_host`` (KServe hard-codes ``0.0.0.0``);
- :class:`~kindml.serving.server.JsonGuard` in front of the app (4xx with a
  message for bad bodies; JSON without a Content-Type and the binary tensor
  extension accepted);
- Open Inference Protocol routes KServe 0.21 answers with 501 ("Model
  versioning not supported yet"): ``/v2/models/{name}/versions/{v}``,
  ``.../versions/{v}/ready`` and ``.../versions/{v}/infer`` — the served
  version answers, any other is a 404 that names the served one; and
  ``/v2/models/{name}`` lists ``versions``;
- ``/metrics`` encodes :func:`kindml.monitoring.metrics.exposition_registry`
  (the same as KServe's with one worker; every worker summed with several).

The routes are registered before KServe's, so they win (FastAPI matches in
order). The class lives at module level: with ``workers > 1`` KServe pickles
the server object into every worker process it spawns.

:class:`KindmlWorkerProcess` gives those workers time to start: KServe's
parent pings each worker every 0.5 s and replaces one that has not answered
within 5 s — from the moment it is spawned, while the worker can only answer
once it has imported KServe (about 5 s alone on a busy 2-core machine) and
unpickled its server. Workers were replaced forever. The subclass waits for
the first answer up to :attr:`KindmlWorkerProcess.startup_grace` seconds (the
worker still counts as dead if its process exits), then pings as KServe does.

Importing this module imports KServe, which parses ``sys.argv`` at import
time: the import keeps the caller's arguments away from it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

_saved, sys.argv = sys.argv, sys.argv[:1]
try:
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import JSONResponse
    from kserve.errors import ModelNotFound, ModelNotReady
    from kserve.protocol.rest.multiprocess.server import RESTServerProcess
    from kserve.protocol.rest.server import RESTServer
    from kserve.protocol.rest.v2_datamodels import (
        InferenceRequest,
        ModelMetadataResponse,
        ModelReadyResponse,
    )
    from kserve.protocol.rest.v2_endpoints import V2Endpoints
finally:
    sys.argv = _saved


class KindmlRESTServer(RESTServer):  # type: ignore[misc]
    bind_host = "127.0.0.1"
    """Set by :func:`kindml.serving.server.bound_rest_server` before the server is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.host = self.bind_host  # read by uvicorn when it opens the socket, after this

    def run(self, sockets: Any = None) -> None:
        """A worker process of ``workers > 1``: build the predictors that arrived as specs, then serve."""
        from kindml.serving.launch import materialize

        materialize(self.dataplane.model_registry)
        super().run(sockets)

    def _add_middlewares(self, app: FastAPI) -> None:
        from kindml.serving.server import JsonGuard

        super()._add_middlewares(app)
        app.add_middleware(JsonGuard)

    def _register_endpoints(self, app: FastAPI) -> None:
        register_kindml_endpoints(app, self.dataplane, self.model_repository_extension)
        super()._register_endpoints(app)


def _version_problem(dataplane: Any, model_name: str, model_version: str) -> JSONResponse | None:
    model = dataplane.model_registry.get_model(model_name)
    if model is None:
        raise ModelNotFound(model_name)
    served = getattr(model, "model_version", None)
    if served is None or str(served) == model_version:
        return None
    return JSONResponse(status_code=404, content={"error": f"model {model_name} serves version {served}, not {model_version}: "
                                                           f"use /v2/models/{model_name}/versions/{served} or leave the version out"})


def register_kindml_endpoints(app: FastAPI, dataplane: Any, model_repository_extension: Any) -> None:
    v2 = V2Endpoints(dataplane, model_repository_extension)

    async def metrics(request: Request) -> Response:
        from prometheus_client import exposition

        from kindml.monitoring.metrics import exposition_registry

        encoder, content_type = exposition.choose_encoder(request.headers.get("accept"))
        return Response(content=encoder(exposition_registry()), headers={"content-type": content_type})

    async def model_metadata(model_name: str) -> Any:
        meta = await dataplane.model_metadata(model_name)
        served = getattr(dataplane.model_registry.get_model(model_name), "model_version", None)
        if served is not None:
            meta["versions"] = [str(served)]
        return ModelMetadataResponse.model_validate(meta)

    async def version_metadata(model_name: str, model_version: str) -> Any:
        return _version_problem(dataplane, model_name, model_version) or await model_metadata(model_name)

    async def version_ready(model_name: str, model_version: str) -> Any:
        problem = _version_problem(dataplane, model_name, model_version)
        if problem is not None:
            return problem
        if not await dataplane.model_ready(model_name):
            raise ModelNotReady(model_name)
        return ModelReadyResponse(name=model_name, ready=True)

    async def version_infer(raw_request: Request, raw_response: Response, model_name: str, model_version: str,
                            request_body: InferenceRequest | bytes) -> Any:
        return _version_problem(dataplane, model_name, model_version) or await v2.infer(raw_request, raw_response, model_name, request_body)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"], response_model=None, tags=["V2"])
    app.add_api_route("/v2/models/{model_name}/versions/{model_version}", version_metadata, methods=["GET"], response_model=None, tags=["V2"])
    app.add_api_route("/v2/models/{model_name}/versions/{model_version}/ready", version_ready, methods=["GET"], response_model=None, tags=["V2"])
    app.add_api_route("/v2/models/{model_name}/versions/{model_version}/infer", version_infer, methods=["POST"], response_model=None, tags=["V2"])


class KindmlWorkerProcess(RESTServerProcess):  # type: ignore[misc]
    """KServe's worker process, with a startup grace before its 5-second liveness pings apply."""

    startup_grace = 300.0
    """Seconds a new worker has to answer its first ping (import KServe, unpickle, build and load the model)."""

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._pinged = False
        self._up = False
        super().start()

    def is_alive(self, timeout: float = 5) -> bool:
        if getattr(self, "_up", True):
            return bool(super().is_alive(timeout))
        if not self._process.is_alive():
            return False
        if not self._pinged:
            self._parent_conn.send(b"ping")
            self._pinged = True
        if self._parent_conn.poll(0):
            self._parent_conn.recv()
            self._up = True
            return True
        return time.monotonic() - self._started_at < self.startup_grace
