"""`kindml report` on real capstone runs, opened in a real headless Chromium (Debian's `chromium`).

The page is loaded through the DevTools protocol (websocket-client, already a
dependency of the kubernetes client): the test collects console messages,
uncaught exceptions and every network request, checks that the key sections
are shown with their charts, and saves a full-page screenshot
(``report-<run>.png`` in the test's tmp folder; set KINDML_REPORT_SHOTS=DIR to
keep copies). Skipped when no Chromium is installed (`make system-deps`
installs it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.local

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
SMALL = ["--rows", "12000", "--days", "45", "--epochs", "3", "--tune-trials", "2"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                  "--hide-scrollbars", "--remote-debugging-port=0", "--remote-allow-origins=*"]

if CHROMIUM is None:
    pytest.skip("no Chromium installed (Debian: `apt-get install chromium`, or `make system-deps`)", allow_module_level=True)


def kindml(args: list[str], home: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env |= {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


class Browser:
    """One headless Chromium with a fresh profile, driven over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        import websocket  # websocket-client

        self.profile = profile
        self.log = (profile.parent / "chromium.log").open("wb")
        self.proc = subprocess.Popen([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start: {(profile.parent / 'chromium.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.events: list[dict[str, Any]] = []
        self._id = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for e in self.events[seen:]:
                if e.get("method") == method:
                    return e
            seen = len(self.events)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        self.events.clear()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expr: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        assert "exceptionDetails" not in res, res
        return res["result"]["value"]

    def screenshot(self, path: Path) -> Path:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 16000), "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def console_errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.log.close()


SECTIONS_JS = """JSON.stringify([...document.querySelectorAll('main > section')].map(s => {
  const r = s.getBoundingClientRect();
  const svgs = [...s.querySelectorAll('svg')].map(g => g.getBoundingClientRect());
  return {id: s.id, title: s.querySelector('h2') ? s.querySelector('h2').textContent : '', height: r.height, width: r.width,
          text: s.innerText, svgs: svgs.length, svgsShown: svgs.filter(b => b.width > 150 && b.height > 80).length};
}))"""


@pytest.fixture(scope="module")
def home(fraud_runs: dict) -> Path:
    """The shared workspace (tests/local/conftest.py): run "corrupt" failed at validate, run "good" is a full drifted run
    with quarantine, serving, monitoring and delayed labels."""
    assert fraud_runs["corrupt"].returncode == 4, fraud_runs["corrupt"].stderr[-3000:]
    assert fraud_runs["good"].returncode == 0, fraud_runs["good"].stderr[-3000:]
    return fraud_runs["home"]


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    b = Browser(tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def render(home: Path, run_id: str) -> Path:
    res = kindml(["report", run_id, "-o", "json"], home, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    path = Path(json.loads(res.stdout)["path"])
    assert path == home / "runs" / run_id / "report.html" and path.is_file()
    return path


def show(browser: Browser, page: Path, shot: Path) -> dict[str, dict[str, Any]]:
    browser.open(page.resolve().as_uri())
    sections = {s["id"]: s for s in json.loads(browser.evaluate(SECTIONS_JS))}
    browser.screenshot(shot)
    if os.environ.get("KINDML_REPORT_SHOTS"):
        keep = Path(os.environ["KINDML_REPORT_SHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / shot.name)
    assert browser.console_errors() == []
    assert [u for u in browser.requests() if not u.startswith(("file://", "data:"))] == []  # nothing from the network
    from PIL import Image

    with Image.open(shot) as im:
        assert im.width == 1280 and im.height > 2000
        assert len(im.convert("RGB").resize((160, 400)).getcolors(1 << 16) or []) > 30  # not a blank page
    return sections


KEY_SECTIONS = ("overview", "timeline", "validation", "training", "evaluation", "registry", "batch", "importance", "audit", "serving",
                "drift", "quality", "experiment", "alerts", "benchmarks")
SHORT_WHEN_ABSENT = ("batch", "experiment")  # fraud has no batch stage and this run no experiment: a one-line note each


def test_report_of_a_full_run_in_chromium(home: Path, browser: Browser, tmp_path: Path) -> None:
    page = render(home, "good")
    sections = show(browser, page, tmp_path / "report-good.png")
    assert list(sections) == list(KEY_SECTIONS)
    for sid in KEY_SECTIONS:
        s = sections[sid]
        assert (s["height"] > 60 or sid in SHORT_WHEN_ABSENT) and s["width"] > 900, s
        assert "could not be rendered" not in s["text"], s["text"]
    assert "succeeded" in sections["overview"]["text"] and "fraud-detector v1" in sections["overview"]["text"]
    assert all(st in sections["timeline"]["text"] for st in ("ingest", "train", "monitor"))
    assert sections["timeline"]["svgsShown"] == 1
    assert "Passed" in sections["validation"]["text"]
    assert sections["training"]["svgsShown"] == 2 and "Ray Tune trials" in sections["training"]["text"]
    ev = sections["evaluation"]
    assert ev["svgsShown"] == 3 and "confusion matrix" in ev["text"] and "Gate: promote" in ev["text"]
    assert "pipeline_run_id" in sections["registry"]["text"] and "champion" in sections["registry"]["text"]
    requests = json.loads((home / "runs" / "good" / "summary.json").read_text())["serving"]["requests"]
    assert sections["serving"]["svgsShown"] == 1 and f"{requests:,}" in sections["serving"]["text"]
    assert "KindmlQualityDegraded" in sections["alerts"]["text"] + sections["quality"]["text"]  # the concept shift's delayed labels
    dr = sections["drift"]
    assert "drift over time" in dr["text"] and dr["svgsShown"] >= 10  # PSI bars + one chart per feature + the score
    assert "KindmlFeatureDrift" in sections["alerts"]["text"] or "KindmlPredictionDrift" in sections["alerts"]["text"]


def test_report_of_a_failed_run_in_chromium(home: Path, browser: Browser, tmp_path: Path) -> None:
    page = render(home, "corrupt")
    sections = show(browser, page, tmp_path / "report-corrupt.png")
    assert list(sections) == list(KEY_SECTIONS)
    assert "Run failed at stage validate" in sections["overview"]["text"]
    assert "Validation FAILED" in sections["validation"]["text"] and "failed expectations" in sections["validation"]["text"]
    assert "failed" in sections["timeline"]["text"]
    for sid in ("training", "evaluation", "registry", "serving", "drift", "alerts"):
        assert "the run stopped at stage validate" in sections[sid]["text"], sid
