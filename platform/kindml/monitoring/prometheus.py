"""A real local Prometheus (Debian's ``prometheus``) scraping the local predictor and evaluating kindml's rules.

Started on 127.0.0.1 (a free port unless given; a taken port is a clear
error), in its own process group, with its TSDB in the workspace; PID and
port are kept in ``state.json`` beside it. Stopped on context exit (also on
Ctrl-C) or by :meth:`stop`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kindml.errors import PrerequisiteMissing, ServingError

JOB = "kindml-predictor"


class LocalPrometheus:
    def __init__(self, folder: Path, targets: list[str], rule_file: Path | None = None, port: int | None = None,
                 scrape_interval: str = "1s", evaluation_interval: str = "1s") -> None:
        self.folder = Path(folder)
        self.targets = targets
        self.rule_file = rule_file
        self.port = port
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalPrometheus:
        from kindml.serving.server import free_port, port_free

        binary = shutil.which("prometheus")
        if binary is None:
            raise PrerequisiteMissing("the prometheus binary is not installed", "Install it: sudo apt-get install -y prometheus (or run `make setup`).")
        self.port = self.port or free_port()
        if not port_free("127.0.0.1", self.port):
            raise ServingError(f"port {self.port} on 127.0.0.1 is already in use; Prometheus cannot start there", "Pick another port or stop what listens there.")
        self.folder.mkdir(parents=True, exist_ok=True)
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.evaluation_interval},
            "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics", "static_configs": [{"targets": self.targets}]}],
        }
        if self.rule_file:
            cfg["rule_files"] = [str(self.rule_file)]
        (self.folder / "prometheus.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        data = self.folder / "data"
        shutil.rmtree(data, ignore_errors=True)
        log = (self.folder / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.folder / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        (self.folder / "state.json").write_text(json.dumps({"pid": self.proc.pid, "port": self.port}), encoding="utf-8")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServingError(f"prometheus exited with code {self.proc.returncode}", f"See {self.folder / 'prometheus.log'}.")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServingError("prometheus did not become ready", f"See {self.folder / 'prometheus.log'}.")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        (self.folder / "state.json").unlink(missing_ok=True)

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        q = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{q}", timeout=5) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise ServingError(f"prometheus API {path} failed: {body}", "")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self._get("/api/v1/query", {"query": expr})["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/alerts")["alerts"]

    def series(self, match: str) -> list[dict[str, str]]:
        return self._get("/api/v1/series", {"match[]": match})

    def wait_for(self, predicate: Any, timeout: float, interval: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = predicate()
            if got:
                return got
            time.sleep(interval)
        return None
