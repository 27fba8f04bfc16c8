"""Runs a :class:`~kindml.cluster.plan.Plan` step by step, resumably.

Progress is persisted after every step in ``<workspace>/cluster/<plan>-state.json``.
If a step fails (or the user interrupts), the next run of the same plan skips
the steps already completed and starts at the failed one. A finished plan, or
one whose steps changed, starts from the top again: every step is idempotent
(server-side apply, guarded ``kind create``), so re-running is safe.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kindml.cluster import proc
from kindml.cluster.plan import Plan, Step
from kindml.errors import ClusterError, KindmlError
from kindml.workspace import atomic_write_json

Progress = Callable[[str, str, Step | None, str], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _noop(event: str, stage: str, step: Step | None, detail: str) -> None:
    return None


class Executor:
    def __init__(
        self,
        plan: Plan,
        state_dir: Path,
        *,
        inputs: dict[str, Callable[[], str]] | None = None,
        doctor: Callable[[], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.plan = plan
        self.state_path = state_dir / f"{plan.state_name}-state.json"
        self.inputs = inputs or {}
        self.doctor = doctor
        self.progress = progress or _noop

    # -- state -------------------------------------------------------------
    def load_state(self) -> dict[str, Any]:
        if not self.state_path.is_file():
            return {}
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def _save(self, state: dict[str, Any]) -> None:
        state["updated_at"] = _now()
        atomic_write_json(self.state_path, state)

    def _fresh_state(self) -> dict[str, Any]:
        return {"plan": self.plan.name, "fingerprint": self.plan.fingerprint(), "started_at": _now(), "completed": [], "status": "running"}

    def resume_point(self) -> tuple[dict[str, Any], bool]:
        """The state to continue from, and whether this is a resume."""
        old = self.load_state()
        if old.get("fingerprint") == self.plan.fingerprint() and old.get("status") in ("failed", "interrupted", "running"):
            old["status"] = "running"
            return old, True
        return self._fresh_state(), False

    # -- running -----------------------------------------------------------
    def _guard_skips(self, step: Step) -> bool:
        if step.skip_if is None:
            return False
        res = proc.run(step.skip_if.argv, timeout=60)
        present = res.ok and step.skip_if.line in [ln.strip() for ln in res.stdout.splitlines()]
        return (not present) if step.skip_if.absent else present

    def _run_step(self, step: Step, timeout: float) -> str:
        if step.action == "doctor":
            if self.doctor is not None:
                self.doctor()
            return "checked"
        if self._guard_skips(step):
            return "skipped (already in the desired state)"
        stdin = step.document
        if step.stdin is not None:
            if step.stdin not in self.inputs:
                raise ClusterError(f"step {step.id} needs generated input {step.stdin!r}", "This is a bug in kindml's plan wiring.")
            stdin = self.inputs[step.stdin]()
        res = proc.run(step.argv, input=stdin, timeout=timeout)
        if not res.ok:
            raise ClusterError(
                f"step {step.id} ({step.description}) failed with exit code {res.returncode}:\n{res.tail()}",
                (step.hint + " " if step.hint else "") + "Then run the same command again: completed steps are skipped and it resumes here.",
            )
        return "done"

    def run(self) -> dict[str, Any]:
        state, resumed = self.resume_point()
        done = set(state.get("completed", []))
        state.pop("failed", None)
        self._save(state)
        self.progress("start", self.plan.name, None, "resuming" if resumed else "starting")
        results: list[dict[str, Any]] = []
        try:
            for stage in self.plan.stages:
                self.progress("stage", stage.name, None, stage.description)
                stage_started = time.monotonic()
                for step in stage.steps:
                    if step.id in done:
                        results.append({"step": step.id, "result": "already completed (resumed)"})
                        self.progress("step-skip", stage.name, step, "already completed")
                        continue
                    remaining = stage.timeout_s - (time.monotonic() - stage_started)
                    if remaining <= 0:
                        raise ClusterError(
                            f"stage {stage.name} used up its {stage.timeout_s} s budget before step {step.id}",
                            "Run the same command again to resume at this step; if it keeps happening, the machine is too slow or short of memory (`kindml doctor --target kind`).",
                        )
                    self.progress("step", stage.name, step, step.display())
                    outcome = self._run_step(step, min(step.timeout_s, remaining))
                    done.add(step.id)
                    state["completed"] = [sid for sid in self.plan.step_ids() if sid in done]
                    self._save(state)
                    results.append({"step": step.id, "result": outcome})
                    self.progress("step-done", stage.name, step, outcome)
        except KeyboardInterrupt:
            state["status"] = "interrupted"
            self._save(state)
            raise
        except KindmlError as exc:
            state["status"] = "failed"
            state["failed"] = {"step": step.id, "error": exc.message}
            self._save(state)
            raise
        state["status"] = "done"
        state["finished_at"] = _now()
        self._save(state)
        return {"plan": self.plan.name, "resumed": resumed, "steps": results, "state_file": str(self.state_path)}
