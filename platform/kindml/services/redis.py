"""A local Redis (Debian's ``redis-server``) for Feast's online store on the embedded default.

Started on 127.0.0.1 on a free port with its data in the workspace
(``.kindml/services/redis``; RDB snapshots on shutdown so a restart keeps the
materialized features), daemonized in its own session; port and PID in
``state.json``. ``ensure_redis`` is idempotent: a live server is reused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from kindml.errors import PrerequisiteMissing, ServingError
from kindml.workspace import Workspace


def _folder(ws: Workspace) -> Path:
    return ws.root / "services" / "redis"


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis(ws: Workspace, port: int | None = None, timeout: float = 15.0) -> str:
    """host:port of a running local Redis, starting one if needed."""
    from kindml.localproc import alive, free_port, port_free

    folder = _folder(ws)
    state = folder / "state.json"
    if state.is_file():
        st = json.loads(state.read_text(encoding="utf-8"))
        if alive(st["pid"]) and ping("127.0.0.1", st["port"]):
            return f"127.0.0.1:{st['port']}"
    binary = shutil.which("redis-server")
    if binary is None:
        raise PrerequisiteMissing("redis-server is not installed (features.online_store is redis)",
                                  "Install it: sudo apt-get install -y redis-server (or `make setup`), or use features.online_store: sqlite.")
    port = port or free_port()
    if not port_free("127.0.0.1", port):
        raise ServingError(f"port {port} on 127.0.0.1 is already in use; Redis cannot start there", "Pick another port or stop what listens there.")
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "redis.log").open("ab")
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "60 1",
                             "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    state.write_text(json.dumps({"pid": proc.pid, "port": port}), encoding="utf-8")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServingError(f"redis-server exited with code {proc.returncode}", f"See {folder / 'redis.log'}.")
        if ping("127.0.0.1", port):
            return f"127.0.0.1:{port}"
        time.sleep(0.1)
    raise ServingError("redis-server did not answer PING", f"See {folder / 'redis.log'}.")


def stop_redis(ws: Workspace) -> bool:
    from kindml.localproc import alive

    state = _folder(ws) / "state.json"
    if not state.is_file():
        return False
    st = json.loads(state.read_text(encoding="utf-8"))
    if alive(st["pid"]):
        os.killpg(st["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 10
        while alive(st["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
    state.unlink(missing_ok=True)
    return True
