"""Run the predictor in a real KServe ModelServer (foreground), and manage it as a local background process.

KServe's REST server binds 0.0.0.0 and offers no host option. Locally kindml
binds 127.0.0.1 by default (``--host``): it swaps in a RESTServer subclass
that sets uvicorn's host before the socket is opened — the only change to
KServe's behaviour. gRPC is off locally (one port to manage). A small ASGI
middleware answers 415 (not KServe's 500) when a POST has no JSON
content type, and 400 when the body is not valid JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kindml.errors import ServingError
from kindml.localproc import alive, free_port, port_free  # noqa: F401 - re-exported for callers
from kindml.workspace import Workspace, atomic_write_json

STATE_FILE = "predictor.json"


class JsonGuard:
    """ASGI middleware: client errors in the body/headers become 4xx with a message, never 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        ctype = headers.get("content-type", "")
        if "json" not in ctype.lower():
            await _reply(send, 415, f"Content-Type must be application/json, got {ctype or 'none'}: send the body as JSON with that header")
            return
        chunks = []
        more = True
        size = 0
        while more:
            msg = await receive()
            body = msg.get("body", b"")
            size += len(body)
            if size > 8 * 1024 * 1024:
                await _reply(send, 413, "request body larger than 8 MiB: split the batch (at most 1024 transactions per request)")
                return
            chunks.append(body)
            more = msg.get("more_body", False)
        raw = b"".join(chunks)
        def _reject_constant(name: str) -> None:
            raise ValueError(f"{name} is not a number JSON allows: send finite numbers only (NaN/Infinity are rejected)")

        try:
            json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            await _reply(send, 400, "the body is not UTF-8 text: send UTF-8 encoded JSON")
            return
        except ValueError as exc:
            await _reply(send, 400, f"the body is not valid JSON: {exc}")
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reply(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def bound_rest_server(host: str) -> type:
    """KServe's ``RESTServer`` with uvicorn bound to ``host`` (KServe hard-codes 0.0.0.0 and has no option for it)."""
    saved, sys.argv = sys.argv, sys.argv[:1]  # kserve parses sys.argv at import time
    try:
        from kserve.protocol.rest.server import RESTServer
    finally:
        sys.argv = saved

    class _BoundRESTServer(RESTServer):  # type: ignore[misc]
        bind_host = host

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host  # read by uvicorn when it opens the socket, after this

    return _BoundRESTServer


def serve_foreground(predictor: Any, host: str, port: int) -> None:
    """Blocking: a KServe ModelServer on host:port (REST v1 + v2, /metrics) until SIGTERM/SIGINT."""
    if not port_free(host, port):
        raise ServingError(f"port {port} on {host} is already in use", "Pick another with --port, or stop what is listening there (`kindml serve stop`).")
    # kserve parses sys.argv at import time; keep ours away from it
    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        import kserve
        import kserve.model_server as ms
    finally:
        sys.argv = saved

    ms.RESTServer = bound_rest_server(host)  # type: ignore[misc]
    ms.app.add_middleware(JsonGuard)
    predictor.load()
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1, enable_docs_url=False, enable_latency_logging=False).start([predictor])


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
                     extra_args: list[str] | None = None, timeout: float = 120.0) -> PredictorState:
    """Start `kindml serve run` as a background process; wait until the model is ready. Idempotent for the same version."""
    ws.ensure()
    current = read_state(ws)
    if current is not None and alive(current.pid):
        if current.model == name and current.version == version:
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
