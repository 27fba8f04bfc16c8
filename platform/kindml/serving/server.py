"""Run the predictor in a real KServe ModelServer (foreground), and manage it as a local background process.

KServe's REST server binds 0.0.0.0 and offers no host option. Locally kindml
binds 127.0.0.1 by default (``--host``): it swaps in a RESTServer subclass
(:mod:`kindml.serving.rest`) that sets uvicorn's host before the socket is
opened, puts :class:`JsonGuard` in front of the app and adds the Open
Inference Protocol routes KServe 0.21 leaves out. gRPC is off locally (one
port to manage). The guard answers 415/413/400 with a message (not KServe's
500) for bodies that are neither JSON nor a well-formed binary tensor request.
``workers > 1`` runs KServe's multi-process server; see :func:`shared_state_dir`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kindml.errors import ServingError
from kindml.localproc import alive, free_port, port_free  # noqa: F401 - re-exported for callers
from kindml.serving import oip
from kindml.workspace import Workspace, atomic_write_json

STATE_FILE = "predictor.json"


V2_INFER = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$")
MAX_BODY = 8 * 1024 * 1024
UNTYPED = ("application/x-www-form-urlencoded",)
"""What clients send when their caller named no type (curl -d, urllib with data): taken as "no Content-Type"."""


class JsonGuard:
    """ASGI middleware: client errors in the body/headers become 4xx with a message, never 500.

    What a POST may be:

    - a JSON body, with ``Content-Type: application/json`` (or ``+json``), with
      no Content-Type at all (what tritonclient sends), or with the form type
      that ``curl -d`` and urllib put on a body when their caller names none
      (:data:`UNTYPED`): the latter two get the JSON header so KServe parses
      the body as JSON;
    - on ``/v2/models/<name>[/versions/<v>]/infer``, a binary tensor extension
      request (header ``Inference-Header-Content-Length``): its layout is
      checked (:func:`kindml.serving.oip.binary_request_problem`) and it is
      passed on as ``application/octet-stream``, which KServe decodes.

    Anything else is answered here: 415 for another content type or a
    compressed body, 413 above 8 MiB, 400 for a body that is not UTF-8 JSON or
    a malformed binary request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        ctype = headers.get("content-type", "").strip()
        binary_len = headers.get(oip.HEADER)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        path = scope.get("path", "")
        if encoding not in ("", "identity"):
            await _reply(send, 415, f"Content-Encoding {encoding} is not supported: send the body uncompressed")
            return
        if binary_len is not None and not V2_INFER.match(path):
            await _reply(send, 400, f"{oip.HEADER.title()} (the binary tensor extension) is only for POST /v2/models/<name>/infer; "
                                    "v1 :predict takes a JSON body")
            return
        declared_json = "json" in ctype.lower()
        untyped = not ctype or ctype.split(";")[0].strip().lower() in UNTYPED
        if binary_len is None and not (declared_json or untyped):
            await _reply(send, 415, f"Content-Type must be application/json, got {ctype}: send the body as JSON"
                                    f"{f' (or binary tensors with the {oip.HEADER.title()} header)' if V2_INFER.match(path) else ''}")
            return
        chunks = []
        more = True
        size = 0
        while more:
            msg = await receive()
            body = msg.get("body", b"")
            size += len(body)
            if size > MAX_BODY:
                await _reply(send, 413, "request body larger than 8 MiB: split the batch into smaller requests")
                return
            chunks.append(body)
            more = msg.get("more_body", False)
        raw = b"".join(chunks)
        if binary_len is not None:
            problem = oip.binary_request_problem(raw, binary_len)
            if problem:
                await _reply(send, 400, problem)
                return
            scope = _with_content_type(scope, "application/octet-stream")
        else:
            def _reject_constant(name: str) -> None:
                raise ValueError(f"{name} is not a number JSON allows: send finite numbers only (NaN/Infinity are rejected)")

            try:
                json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except UnicodeDecodeError:
                await _reply(send, 400, "the body is not UTF-8 text: send UTF-8 encoded JSON")
                return
            except ValueError as exc:
                sent_as = f" (it was sent as {ctype}: with curl -d add -H 'Content-Type: application/json')" if ctype and not declared_json else ""
                await _reply(send, 400, f"the body is not valid JSON: {exc}{sent_as}")
                return
            if not declared_json:
                scope = _with_content_type(scope, "application/json")
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _with_content_type(scope: dict[str, Any], ctype: str) -> dict[str, Any]:
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", ctype.encode("latin-1"))]}


async def _reply(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def bound_rest_server(host: str) -> type:
    """KServe's ``RESTServer`` with uvicorn bound to ``host`` (KServe hard-codes 0.0.0.0 and has no option for it),
    kindml's JSON guard and its extra Open Inference Protocol routes (:mod:`kindml.serving.rest`)."""
    from kindml.serving.rest import KindmlRESTServer

    KindmlRESTServer.bind_host = host
    return KindmlRESTServer


@contextlib.contextmanager
def shared_state_dir(workers: int, given: str | None = None) -> Iterator[str | None]:
    """The folder every worker of a ``workers > 1`` server shares (None for one worker), as ``PROMETHEUS_MULTIPROC_DIR``.

    prometheus_client's multiprocess mode reads that variable when a process
    imports it, and KServe's workers are spawned fresh processes that inherit
    the environment, so it is set here, before they start (with
    :data:`~kindml.monitoring.metrics.METRICS_DIR_ENV`, which is what tells
    kindml's ``/metrics`` to sum the folder). ``given`` (the caller's
    ``PROMETHEUS_MULTIPROC_DIR``, from
    :func:`~kindml.monitoring.metrics.take_caller_metrics_dir`) is used and
    emptied of stale ``*.db`` files and drift window (prometheus_client
    requires a clean folder per server run); otherwise a private temporary
    folder is made and removed at the end.
    """
    from kindml.monitoring.metrics import METRICS_DIR_ENV, PROMETHEUS_DIR_ENVS

    if workers <= 1:
        yield None
        return
    from kindml.serving.launch import DRIFT_WINDOW_FILE

    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in [*folder.glob("*.db"), folder / DRIFT_WINDOW_FILE]:
            stale.unlink(missing_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="kindml-workers-"))
    for name in PROMETHEUS_DIR_ENVS:  # e.g. Feast's folder, if this process imported Feast already
        os.environ.pop(name, None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[METRICS_DIR_ENV] = str(folder)
    try:
        yield str(folder)
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        os.environ.pop(METRICS_DIR_ENV, None)
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


def serve_foreground(predictor: Any, host: str, port: int, workers: int = 1) -> None:
    """Blocking: a KServe ModelServer on host:port (REST v1 + v2, /metrics) until SIGTERM/SIGINT.

    ``workers > 1``: KServe spawns that many uvicorn worker processes on one
    socket and pickles ``predictor`` into each (it must carry a
    :class:`~kindml.serving.launch.PredictorSpec`); run it inside
    :func:`shared_state_dir` so their metrics and drift window are shared.
    """
    from kindml.monitoring.metrics import multiprocess_dir

    if workers > 1 and not multiprocess_dir():
        raise ServingError("several workers need a shared metrics folder and none was set up (KINDML_METRICS_DIR is unset)",
                           "Start it with `kindml serve run --workers N`, which sets one up.")
    if not port_free(host, port):
        raise ServingError(f"port {port} on {host} is already in use", "Pick another with --port, or stop what is listening there (`kindml serve stop`).")
    # kserve parses sys.argv at import time, in this process and in every worker it spawns (they get this
    # process's sys.argv): keep ours away from it until the server has stopped
    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        import kserve
        import kserve.model_server as ms
        import kserve.protocol.rest.multiprocess.server as mps

        server_cls = bound_rest_server(host)
        ms.RESTServer = server_cls  # type: ignore[misc]
        mps.RESTServer = server_cls  # type: ignore[misc]  # what RESTServerMultiProcess builds for workers > 1
        from kindml.serving.rest import KindmlWorkerProcess

        mps.RESTServerProcess = KindmlWorkerProcess  # type: ignore[misc]  # its workers, with a startup grace
        predictor.load()
        kserve.ModelServer(http_port=port, enable_grpc=False, workers=workers, enable_docs_url=False,
                           enable_latency_logging=False).start([predictor])
    finally:
        sys.argv = saved


@dataclass
class PredictorState:
    pid: int
    host: str
    port: int
    model: str
    version: str
    model_dir: str
    log: str
    started: float

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def state_path(ws: Workspace) -> Path:
    return ws.serving / STATE_FILE


def read_state(ws: Workspace) -> PredictorState | None:
    p = state_path(ws)
    if not p.is_file():
        return None
    try:
        return PredictorState(**json.loads(p.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start_background(ws: Workspace, model_dir: Path, name: str, version: str, host: str = "127.0.0.1", port: int | None = None,
                     extra_args: list[str] | None = None, timeout: float = 120.0, restart: bool = False) -> PredictorState:
    """Start `kindml serve run` as a background process; wait until the model is ready. Idempotent for the same version
    (``restart``: start it again anyway, e.g. to pick up a new experiment record)."""
    ws.ensure()
    current = read_state(ws)
    if current is not None and alive(current.pid):
        if current.model == name and current.version == version and not restart:
            return current
        stop_background(ws)
    port = port or free_port(host)
    if not port_free(host, port):
        raise ServingError(f"port {port} on {host} is already in use", "Pick another with --port, or stop what is listening there.")
    log_path = ws.serving / "predictor.log"
    cmd = [sys.executable, "-P", "-m", "kindml", "serve", "run", "--model-dir", str(model_dir), "--name", name, "--version", version,
           "--host", host, "--port", str(port), *(extra_args or [])]
    env = dict(os.environ)
    env["KINDML_HOME"] = str(ws.root)
    with log_path.open("ab") as logf:
        # -P and cwd: a folder named "kindml" in the caller's directory must not shadow the package
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=ws.root)
    st = PredictorState(pid=proc.pid, host=host, port=port, model=name, version=version, model_dir=str(model_dir), log=str(log_path), started=time.time())
    atomic_write_json(state_path(ws), asdict(st))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            state_path(ws).unlink(missing_ok=True)
            tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            raise ServingError(f"the predictor exited with code {proc.returncode} before it was ready:\n  " + "\n  ".join(tail),
                               f"Full log: {log_path}")
        try:
            code, _ = http_get(f"{st.url}/v1/models/{name}", timeout=1.0)
            if code == 200:
                return st
        except OSError:
            pass
        time.sleep(0.3)
    stop_background(ws)
    raise ServingError(f"the predictor did not become ready within {timeout:.0f} s", f"See {log_path}.")


def stop_background(ws: Workspace, timeout: float = 20.0) -> PredictorState | None:
    """Stop the background predictor (SIGTERM to its process group, then SIGKILL). Idempotent."""
    st = read_state(ws)
    if st is None:
        return None
    if alive(st.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(st.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(st.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(st.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(st.pid, signal.SIGKILL)
    state_path(ws).unlink(missing_ok=True)
    return st
