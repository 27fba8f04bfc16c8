"""A real local Prometheus (Debian's ``prometheus`` binary) scraping local predictors and evaluating kindml's rules.

:class:`LocalPrometheus` owns one folder (e.g. ``.kindml/serving/prometheus``)::

    prometheus.yml     the generated configuration (global intervals, rule file, one scrape job)
    targets.json       file_sd targets of job ``kindml-predictor`` (rewritten by set_targets, no restart)
    data/              the TSDB (wiped at every start: each run starts from an empty history)
    prometheus.log     stdout + stderr of the server
    state.json         pid, port, url, start time of the running server

It listens on 127.0.0.1 only -- on a free port, or on the given one (a taken
port is a :class:`~kindml.errors.MonitoringError` naming it) -- and runs in its
own session / process group, so a Ctrl-C in the terminal reaches kindml, which
stops it: on context-manager exit (also for ``KeyboardInterrupt``), on
:meth:`~LocalPrometheus.stop` and, as a last resort, at interpreter exit. A
``SIGKILL`` of the parent leaves it running; the next :meth:`~LocalPrometheus.start`
in the same folder (or :meth:`~LocalPrometheus.stop`) finds it through
``state.json`` and stops it -- only after checking that the PID is a
``prometheus`` process started with *this* folder's configuration.

Query helpers wrap the HTTP API (``/api/v1/query``, ``/api/v1/alerts``,
``/api/v1/series``, ``/api/v1/rules``, ``/api/v1/targets``) and return its
``data`` part; :meth:`~LocalPrometheus.wait_for` polls a predicate.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kindml.errors import MonitoringError, PrerequisiteMissing
from kindml.localproc import alive, free_port, port_free  # noqa: F401 - free_port is part of this module's API

JOB = "kindml-predictor"
HOST = "127.0.0.1"
INSTALL_HINT = "Install Debian's Prometheus (it brings promtool too): `sudo apt-get install -y prometheus`, or run `make setup`."
T = TypeVar("T")


def find_binary(name: str = "prometheus") -> str:
    """Path of ``prometheus`` (or ``promtool``); :class:`PrerequisiteMissing` with the apt hint if absent."""
    found = shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if os.access(p, os.X_OK)), None)
    if not found:
        raise PrerequisiteMissing(f"the `{name}` binary is not installed (needed for the local monitoring loop)", INSTALL_HINT)
    return found


def port_taken(port: int, host: str = HOST) -> bool:
    return not port_free(host, port)


def _pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


class LocalPrometheus:
    """Start, query and stop a local Prometheus scraping ``targets`` (``host:port`` of predictors).

    ``rule_file``: a rule file to evaluate (e.g. from :func:`kindml.monitoring.rules.write_local_rules`).
    ``port``: ``None`` for a free port. Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        workspace_dir: Path | str,
        targets: list[str] | tuple[str, ...] = (),
        rule_file: Path | str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        port: int | None = None,
        retention: str = "6h",
        binary: str | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.folder = Path(workspace_dir)
        self.targets = [str(t) for t in targets]
        for t in self.targets:
            host, _, p = t.rpartition(":")
            if not host or not p.isdigit():
                raise MonitoringError(f"scrape target {t!r} is not host:port", "Pass predictor addresses like 127.0.0.1:8080.")
        self.rule_file = Path(rule_file).resolve() if rule_file else None
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.requested_port = port
        self.port: int | None = port
        self.retention = retention
        self._binary = binary
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False

    # ---- paths
    @property
    def config_path(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def targets_path(self) -> Path:
        return self.folder / "targets.json"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "prometheus.log"

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    @property
    def url(self) -> str:
        if self.port is None:
            st = self._read_state()
            if st:
                return str(st["url"])
            raise MonitoringError("the local Prometheus has no port yet", "Call start() first.")
        return f"http://{HOST}:{self.port}"

    # ---- configuration
    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [{
                "job_name": JOB,
                "metrics_path": "/metrics",
                "file_sd_configs": [{"files": [str(self.targets_path.resolve())], "refresh_interval": "5s"}],
            }],
        }
        if self.rule_file is not None:
            cfg["rule_files"] = [str(self.rule_file)]
        return cfg

    def write_config(self) -> Path:
        import yaml

        from kindml.workspace import atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_targets()
        atomic_write_text(self.config_path, "# generated by kindml.monitoring.prometheus\n" + yaml.safe_dump(self.config(), sort_keys=False))
        return self.config_path

    def _write_targets(self) -> None:
        from kindml.workspace import atomic_write_json

        atomic_write_json(self.targets_path, [{"targets": self.targets, "labels": {}}] if self.targets else [])

    def set_targets(self, targets: list[str]) -> None:
        """Replace the scrape targets; a running server picks them up from targets.json (file_sd) without a restart."""
        self.targets = [str(t) for t in targets]
        self._write_targets()

    # ---- state
    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _is_ours(self, pid: int) -> bool:
        cmd = _pid_cmdline(pid)
        return bool(cmd) and Path(cmd[0]).name == "prometheus" and any(str(self.config_path.resolve()) in a for a in cmd)

    def _stop_stale(self) -> None:
        st = self._read_state()
        if st and isinstance(st.get("pid"), int) and alive(st["pid"]) and self._is_ours(st["pid"]):
            self._terminate(st["pid"])
        self.state_path.unlink(missing_ok=True)

    # ---- lifecycle
    def start(self, timeout: float | None = None) -> LocalPrometheus:
        """Write the config, start the server and wait until /-/ready answers. Returns self."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        binary = self._binary or find_binary("prometheus")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        attempts = 1 if self.requested_port is not None else 3
        for attempt in range(attempts):
            if self.requested_port is not None:
                self.port = self.requested_port
                if port_taken(self.port):
                    raise MonitoringError(f"port {self.port} on {HOST} is already in use: the local Prometheus cannot listen there",
                                          "Pick another port, omit it to get a free one, or stop what listens there.")
            else:
                self.port = free_port()
            try:
                self._spawn(binary, timeout if timeout is not None else self.ready_timeout)
                return self
            except MonitoringError:
                if attempt + 1 < attempts and "address already in use" in self._log_tail().lower():
                    continue  # lost the race for a free port: try another
                raise
        raise AssertionError("unreachable")

    def _spawn(self, binary: str, timeout: float) -> None:
        self.write_config()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- kindml: starting prometheus on {HOST}:{self.port} at {datetime.now(UTC).isoformat()}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path.resolve()}",
                    f"--storage.tsdb.path={self.data_dir.resolve()}",
                    f"--storage.tsdb.retention.time={self.retention}",
                    f"--web.listen-address={HOST}:{self.port}",
                    "--web.enable-lifecycle",
                    "--log.level=info",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.folder,
            )
        from kindml.workspace import atomic_write_json

        atomic_write_json(self.state_path, {"pid": self.proc.pid, "port": self.port, "url": self.url, "config": str(self.config_path.resolve()),
                                            "started": datetime.now(UTC).isoformat(timespec="seconds")})
        if not self._atexit_registered:
            atexit.register(self._at_exit)
            self._atexit_registered = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                self.state_path.unlink(missing_ok=True)
                raise MonitoringError(f"prometheus exited during start-up (exit code {code}):\n{self._log_tail()}",
                                      f"Read {self.log_path}; `promtool check config {self.config_path}` checks the configuration.")
            if self.ready():
                return
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise MonitoringError(f"prometheus did not become ready on {self.url} within {timeout:.0f} s:\n{tail}", f"Read {self.log_path}.")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as r:
                return r.status == 200
        except (OSError, MonitoringError):
            return False

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rsplit("--- kindml:", 1)[-1].splitlines()[-lines:])

    @staticmethod
    def _terminate(pid: int, timeout: float = 10.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)  # its own process group (start_new_session): pgid == pid
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not alive(pid):
                    return
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server this object (or an earlier run in the same folder) started. True if one was running."""
        stopped = False
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=timeout)
                stopped = True
            self.proc = None
        else:
            st = self._read_state()
            if st and isinstance(st.get("pid"), int) and alive(st["pid"]) and self._is_ours(st["pid"]):
                self._terminate(st["pid"], timeout)
                stopped = True
        self.state_path.unlink(missing_ok=True)
        return stopped

    def _at_exit(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc is not None:
                self.stop(timeout=5.0)

    def status(self) -> dict[str, Any]:
        """``{"running", "ready", "pid", "port", "url", "targets", "rule_file", "folder"}`` from this object or state.json."""
        st = self._read_state() or {}
        pid = self.proc.pid if self.proc is not None else st.get("pid")
        running = bool(isinstance(pid, int) and alive(pid) and (self.proc is not None or self._is_ours(pid)))
        port = self.port if self.proc is not None else st.get("port")
        url = f"http://{HOST}:{port}" if port else None
        return {
            "running": running,
            "ready": running and self.ready(),
            "pid": pid if running else None,
            "port": port if running else None,
            "url": url if running else None,
            "targets": self.targets,
            "rule_file": str(self.rule_file) if self.rule_file else None,
            "folder": str(self.folder),
        }

    def reload(self) -> None:
        """Re-read prometheus.yml and the rule file (POST /-/reload)."""
        self.write_config()
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            raise MonitoringError(f"prometheus refused the reload: {exc.read().decode(errors='replace')}", f"Read {self.log_path}.") from None
        except OSError as exc:
            raise MonitoringError(f"cannot reach prometheus at {self.url}: {exc}", "Is it running? See status().") from None

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- HTTP API
    def api(self, path: str, params: dict[str, Any] | list[tuple[str, str]] | None = None, timeout: float = 10.0) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; errors become :class:`MonitoringError`."""
        q = f"?{urllib.parse.urlencode(params, doseq=True)}" if params else ""
        url = f"{self.url}/api/v1/{path.lstrip('/')}{q}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            try:
                err = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                err = str(exc)
            raise MonitoringError(f"prometheus API /api/v1/{path}: {err}", "Check the PromQL expression / parameters.") from None
        except (OSError, ValueError) as exc:
            raise MonitoringError(f"cannot reach prometheus at {self.url}: {exc}", "Is it running? See status().") from None
        if body.get("status") != "success":
            raise MonitoringError(f"prometheus API /api/v1/{path}: {body.get('error', body)}", "Check the request.")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query: the ``result`` list (``[{"metric": {...}, "value": [ts, "v"]}, ...]`` for vectors)."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        return self.api("query", params)["result"]

    def query_value(self, expr: str) -> float | None:
        """The value of a one-element vector or a scalar; None if empty."""
        data = self.api("query", {"query": expr})
        res = data["result"]
        if data["resultType"] == "scalar":
            return float(res[1])
        return float(res[0]["value"][1]) if res else None

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing): ``[{"labels", "annotations", "state", "activeAt", "value"}, ...]``."""
        return self.api("alerts")["alerts"]

    def firing(self, alertname: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a.get("state") == "firing" and (alertname is None or a["labels"].get("alertname") == alertname)]

    def rules(self) -> list[dict[str, Any]]:
        return self.api("rules")["groups"]

    def series(self, match: str, start: float | None = None, end: float | None = None) -> list[dict[str, str]]:
        """Label sets of the series matching ``match`` (a selector like ``kindml_feature_drift{method="psi"}``)."""
        params: list[tuple[str, str]] = [("match[]", match)]
        if start is not None:
            params.append(("start", f"{start:.3f}"))
        if end is not None:
            params.append(("end", f"{end:.3f}"))
        return self.api("series", params)

    def targets_health(self) -> list[dict[str, Any]]:
        return self.api("targets", {"state": "active"})["activeTargets"]

    def wait_for(self, predicate: Callable[[], T], timeout: float, interval: float = 0.5) -> T | None:
        """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` s pass (None).

        A :class:`MonitoringError` or ``OSError`` raised by the predicate (e.g. the
        server is not up yet) counts as "not yet".
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = predicate()
                if got:
                    return got
            except (MonitoringError, OSError):
                pass
            if time.monotonic() >= deadline:
                return None
            time.sleep(interval)


class RemotePrometheus(LocalPrometheus):
    """The same query API against an existing server (the cluster's Prometheus); start/stop do nothing."""

    def __init__(self, url: str) -> None:
        super().__init__(Path("."), [])
        self._remote_url = url.rstrip("/")

    @property
    def url(self) -> str:  # type: ignore[override]
        return self._remote_url

    def start(self, *args: Any, **kwargs: Any) -> RemotePrometheus:  # type: ignore[override]
        return self

    def stop(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None
