"""The audit log of the model registry: who moved which alias, what the gate decided, who approved or
rejected which version, what an experiment decided — each with when, why and from which run.

Every event is kept twice:

- **the workspace file** ``<workspace>/registry/audit.jsonl``: one JSON event per line, appended with
  ``O_APPEND`` under an exclusive ``flock`` (concurrent writers never interleave), fsync'd, never
  rewritten or truncated. A torn last line (a writer killed mid-write) stays where it is: the next
  append starts on a fresh line and readers report the torn line instead of failing.
- **the registry** (MLflow): a tag ``kindml.audit.<time>.<id>`` on the registered model, the event's
  JSON as its value. One tag per event, never overwritten, so concurrent writers need no
  read-modify-write. This copy lives wherever the model lives: on the cluster the workspace is a
  pod's emptyDir and the MLflow server is the only place the history survives.

Which copy must be written (the *primary*) depends on where the registry is: a store on this machine
(``sqlite:``, ``file:``, a path) → the file (append-only, unlike tags, which anyone with registry
access can delete); a server (``http(s):``, a database URL) → the registry's tags. An action is
recorded only after it happened; a failed primary write is raised so the caller undoes the action; a
failed secondary write is a warning, and a missing registry copy is re-sent with the next event of
that model (:meth:`AuditLog.record`). :meth:`AuditLog.history` merges both copies by event id.

The API other parts call (the A/B work, for experiment decisions)::

    from kindml import audit
    audit.record(env, kind="experiment_decision", model="my-model", version="4",
                 why="challenger won: +0.8% recall at equal precision", run_id="ab-2026...",
                 details={"experiment": "ab-7", "decision": "promote_challenger"})
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from kindml.errors import RegistryError, UsageError

if TYPE_CHECKING:
    from kindml.runtime import RuntimeEnv

log = logging.getLogger(__name__)

SCHEMA = 1
KINDS = ("gate_decision", "alias_move", "approval", "rejection", "experiment_decision")
TAG_PREFIX = "kindml.audit."
FILE = Path("registry") / "audit.jsonl"
LOCK = Path("registry") / "audit.lock"
MAX_REASON = 2000
MAX_EVENT_BYTES = 32_000  # far below MLflow's 100,000-character registry tag value limit
USER_ENV = "KINDML_USER"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_REQUIRED = ("id", "time", "kind", "model", "who", "why")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def current_user(environ: Mapping[str, str] | None = None) -> str:
    """Who acts: ``$KINDML_USER``, else the OS user (``uid N`` in a container without a passwd entry)."""
    e = os.environ if environ is None else environ
    given = e.get(USER_ENV)
    if given is not None:
        name = given.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise UsageError(f"{USER_ENV}={given!r} is not a user name", f"Set {USER_ENV} to your name or e-mail (printable, at most 200 characters), or unset it.")
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def check_reason(reason: str | None, what: str = "this action") -> str:
    """A required, non-blank, bounded reason; a :class:`UsageError` with a hint otherwise."""
    text = (reason or "").strip()
    if not text:
        raise UsageError(f"{what} needs a reason", 'Pass --reason "..." (it is kept in the audit log: `kindml models history NAME`).')
    if len(text) > MAX_REASON:
        raise UsageError(f"the reason is {len(text)} characters long (at most {MAX_REASON})", "Shorten it; link to a longer write-up instead.")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise UsageError("the reason contains control characters", "Write it as plain text.")
    return text


def new_event(kind: str, model: str, why: str, *, version: str | int | None = None, run_id: str | None = None, who: str | None = None,
              via: str = "api", details: Mapping[str, Any] | None = None, op: str | None = None, seq: int = 0,
              time: str | None = None) -> dict[str, Any]:
    """One validated event (not yet recorded). ``op`` groups the events of one action; ``seq`` orders them."""
    if kind not in KINDS:
        raise UsageError(f"unknown audit event kind {kind!r}", f"Use one of: {', '.join(KINDS)}.")
    if not isinstance(model, str) or not _NAME.match(model):
        raise UsageError(f"{model!r} is not a registered model name", "See `kindml models list`.")
    if version is not None and not str(version).isdigit():
        raise UsageError(f"{version!r} is not a model version", "Versions are numbers (see `kindml models list`).")
    text = check_reason(why, f"audit event {kind}")
    event = {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex,
        "op": op or uuid.uuid4().hex[:16],
        "seq": int(seq),
        "time": time or now(),
        "kind": kind,
        "model": model,
        "version": None if version is None else str(version),
        "who": who if who is not None else current_user(),
        "via": via,
        "why": text,
        "run_id": run_id or None,
        "details": dict(details or {}),
    }
    try:
        size = len(_line(event))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"audit event details are not JSON: {exc}", "Pass plain strings, numbers, booleans, lists and dicts.") from None
    if size > MAX_EVENT_BYTES:
        raise UsageError(f"audit event is {size} bytes (at most {MAX_EVENT_BYTES})", "Keep details small; store large documents as artifacts and link them.")
    return event


def batch(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events of one action: one ``op``, one ``time``, ``seq`` in order (each spec: the arguments of :func:`new_event`)."""
    op, t = uuid.uuid4().hex[:16], now()
    return [new_event(**{**spec, "op": op, "seq": i, "time": t}) for i, spec in enumerate(specs)]


def _line(event: Mapping[str, Any]) -> bytes:
    return (json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def sort_key(event: Mapping[str, Any]) -> tuple[str, str, int]:
    return (str(event.get("time", "")), str(event.get("op", "")), int(event.get("seq") or 0))


def describe(event: Mapping[str, Any]) -> str:
    """What an event says, in a few words (the history table and the report)."""
    d = event.get("details") or {}
    kind = event.get("kind")
    if kind == "gate_decision":
        score = d.get("candidate")
        metric = f" {d.get('metric')}={score:.4f}" if isinstance(score, int | float) and d.get("metric") else ""
        return f"gate {str(d.get('decision', '?')).upper()}{metric} -> {d.get('status', '?')}"
    if kind == "alias_move":
        old, new = d.get("from_version"), d.get("to_version")
        forced = " (forced)" if d.get("forced") else ""
        return f"@{d.get('alias')} {'v' + str(old) if old else '-'} -> {'v' + str(new) if new else 'removed'}{forced}"
    if kind == "approval":
        return "approved" + (" (FORCED past a rejection)" if d.get("forced") else "") + f", was {d.get('previous_status', '?')}"
    if kind == "rejection":
        return f"rejected, was {d.get('previous_status', '?')}"
    if kind == "experiment_decision":
        what = " ".join(str(d[k]) for k in ("experiment", "decision") if d.get(k))
        return f"experiment {what}".strip()
    return str(kind)


# --------------------------------------------------------------------------- the workspace file


def append(path: Path, events: list[dict[str, Any]]) -> None:
    """Append ``events`` as lines of ``path`` in one write, under an exclusive lock, and fsync.

    The file is opened ``O_APPEND`` (every write lands at the end, whatever other writers did) and
    never truncated, rewritten or seeked for writing.
    """
    import fcntl

    if not events:
        return
    data = b"".join(_line(e) for e in events)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a torn last line stays alone on its line (readers report it)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    if created:
        with contextlib.suppress(OSError):  # make the new directory entry durable too
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def _check_event(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return f"a JSON {type(obj).__name__}, not an event object"
    missing = [k for k in _REQUIRED if not obj.get(k)]
    if missing:
        return f"no {', '.join(missing)}"
    if obj["kind"] not in KINDS:
        return f"unknown kind {obj['kind']!r}"
    return None


def read(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every event of the file, in file order, and a note per line that is not an event (never raises for content)."""
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"cannot read {path}: {exc.strerror}"]
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{path} line {n}: not a JSON event ({type(exc).__name__}: {str(exc)[:80]}): {line[:60]!r}")
            continue
        why = _check_event(obj)
        if why:
            problems.append(f"{path} line {n}: {why}")
            continue
        events.append(obj)
    return events, problems


# --------------------------------------------------------------------------- the registry copy


def tag_key(event: Mapping[str, Any]) -> str:
    stamp = re.sub(r"[^0-9T.Z]", "", str(event["time"]))  # 2026-12-03T10:15:00.123456Z -> 20261203T101500.123456Z
    return f"{TAG_PREFIX}{stamp}.{event['id']}"


def _client(tracking_uri: str) -> Any:
    from kindml.registry import _client as client

    return client(tracking_uri)


def mirror_write(tracking_uri: str, events: list[dict[str, Any]]) -> None:
    """Each event as its own tag on its registered model (raises what MLflow raises)."""
    from kindml.registry import mlflow_env

    with mlflow_env(tracking_uri):
        client = _client(tracking_uri)
        for e in events:
            client.set_registered_model_tag(e["model"], tag_key(e), _line(e).decode("utf-8").rstrip("\n"))


def mirror_read(tracking_uri: str, model: str) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """The events kept on the registered model (None when the model is not in the registry) and notes on unreadable tags."""
    from kindml.registry import get_registered_model

    rm = get_registered_model(tracking_uri, model)
    if rm is None:
        return None, []
    events, problems = [], []
    for key, value in sorted((rm.tags or {}).items()):
        if not key.startswith(TAG_PREFIX):
            continue
        try:
            obj = json.loads(value)
        except ValueError as exc:
            problems.append(f"registry tag {key}: not a JSON event ({exc})")
            continue
        why = _check_event(obj)
        if why:
            problems.append(f"registry tag {key}: {why}")
            continue
        events.append(obj)
    return events, problems


# --------------------------------------------------------------------------- the log


def is_server(tracking_uri: str) -> bool:
    """Whether the registry is a server shared beyond this machine (then its copy is the primary)."""
    scheme = urlsplit(tracking_uri).scheme.lower()
    return scheme not in ("", "sqlite", "file") and not re.fullmatch(r"[a-z]", scheme)  # "c:" is a Windows drive


def registry_key(tracking_uri: str, workspace: Path | str) -> str:
    """What every event says about the registry it belongs to: ``workspace`` for the workspace's own store, else the
    URI without credentials (so the file of a workspace used with several registries never mixes their models)."""
    from kindml.workspace import Workspace

    if tracking_uri == Workspace(Path(workspace)).mlflow_tracking_uri:
        return "workspace"
    parts = urlsplit(tracking_uri)
    if not (parts.username or parts.password):
        return tracking_uri  # as written (urlunsplit would turn sqlite://// into sqlite://)
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


@dataclass
class History:
    model: str
    events: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    in_registry: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "events": self.events, "problems": self.problems, "in_registry": self.in_registry}


@dataclass(frozen=True)
class AuditLog:
    """The audit log of one registry as seen from one workspace."""

    workspace: Path
    tracking_uri: str

    @classmethod
    def of(cls, env: RuntimeEnv) -> AuditLog:
        return cls(Path(env.workspace), env.mlflow_tracking_uri)

    @property
    def path(self) -> Path:
        return self.workspace / FILE

    @property
    def registry(self) -> str:
        return registry_key(self.tracking_uri, self.workspace)

    @property
    def primary(self) -> Literal["file", "registry"]:
        return "registry" if is_server(self.tracking_uri) else "file"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise read-decide-act-record sequences of this workspace (approve vs approve, approve vs register).

        Across machines sharing one registry server there is no such lock (MLflow has none); each event
        still records the state it saw (``from_version``), so a race is visible in the history.
        """
        import fcntl

        path = self.workspace / LOCK
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RegistryError(f"cannot open the audit lock {path}: {exc.strerror}", "Set KINDML_HOME to a writable folder.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _stamp(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**e, "registry": self.registry} for e in events]

    def record(self, events: list[dict[str, Any]]) -> list[str]:
        """Keep ``events`` (made by :func:`new_event` / :func:`batch`; they describe something that already happened).

        The primary copy is written first: when it fails, a :class:`RegistryError` is raised and nothing
        was recorded anywhere, so the caller undoes its action. A failed secondary copy returns a warning.
        Returns the warnings.
        """
        events = self._stamp(events)
        warnings: list[str] = []
        if self.primary == "file":
            try:
                append(self.path, events)
            except OSError as exc:
                raise RegistryError(f"cannot write the audit log {self.path}: {exc.strerror or exc}",
                                    "Free disk space or fix the permissions of the workspace; the action was undone.") from None
            warnings += self._mirror(events)
        else:
            try:
                mirror_write(self.tracking_uri, events)
            except Exception as exc:
                raise RegistryError(f"cannot write the audit events to the registry {self.tracking_uri}: {type(exc).__name__}: {exc}",
                                    "Check that the MLflow server is reachable (`kindml cluster status`); the action was undone.") from None
            try:
                append(self.path, events)
            except OSError as exc:
                warnings.append(f"the workspace copy of the audit log ({self.path}) was not written: {exc.strerror or exc}")
        for e in events:
            log.info("audit %s", _line(e).decode("utf-8").rstrip("\n"))
        return warnings

    def _mirror(self, events: list[dict[str, Any]]) -> list[str]:
        """The registry copy of ``events`` plus any earlier file events of the same models it is missing."""
        from kindml.registry import store_exists

        models = sorted({e["model"] for e in events})
        try:
            if not store_exists(self.tracking_uri):  # never create a store as a side effect
                raise RegistryError(f"no registry store at {self.tracking_uri}", "")
            file_events, _ = read(self.path)
            todo: list[dict[str, Any]] = []
            for model in models:
                have, _ = mirror_read(self.tracking_uri, model)
                if have is None:
                    raise RegistryError(f"no registered model {model!r}", "Register it first.")
                ids = {e["id"] for e in have}
                todo += [e for e in file_events if e["model"] == model and e.get("registry") == self.registry and e["id"] not in ids]
            mirror_write(self.tracking_uri, todo)
        except Exception as exc:
            log.warning("audit: registry copy not written: %s", exc)
            return [f"the registry copy of the audit events was not written ({type(exc).__name__}: {exc}); "
                    f"they are in {self.path} and will be re-sent with the next event of {', '.join(models)}"]
        return []

    def history(self, model: str) -> History:
        """Every event of ``model`` from both copies, oldest first; each says where it is ``stored``."""
        file_events, problems = read(self.path)
        merged: dict[str, dict[str, Any]] = {}
        for e in file_events:
            if e.get("model") == model and e.get("registry", self.registry) == self.registry:
                merged[e["id"]] = {**e, "stored": ["file"]}
        in_registry = False
        from kindml.registry import store_exists

        if store_exists(self.tracking_uri):  # reading never creates a store
            try:
                mirrored, more = mirror_read(self.tracking_uri, model)
            except Exception as exc:
                problems.append(f"cannot read the registry copy ({self.tracking_uri}): {type(exc).__name__}: {exc}")
                mirrored, more, in_registry = [], [], True  # unknown: do not claim it is gone
            problems += more
            in_registry = in_registry or mirrored is not None
            for e in mirrored or []:
                if e.get("model") != model:
                    problems.append(f"registry tag of event {e['id']}: names model {e.get('model')!r}, not {model!r}")
                    continue
                if e["id"] in merged:
                    merged[e["id"]]["stored"].append("registry")
                else:
                    merged[e["id"]] = {**e, "stored": ["registry"]}
        return History(model, sorted(merged.values(), key=sort_key), problems, in_registry)


def record(env: RuntimeEnv, *, kind: str, model: str, why: str, version: str | int | None = None, run_id: str | None = None,
           details: Mapping[str, Any] | None = None, who: str | None = None, via: str = "api") -> dict[str, Any]:
    """Record one event of ``model`` (e.g. an ``experiment_decision``) in the audit log of ``env``'s registry; returns it.

    Raises :class:`~kindml.errors.UsageError` for a malformed event and :class:`~kindml.errors.RegistryError`
    when the primary copy cannot be written; a failed secondary copy is logged as a warning.
    """
    event = new_event(kind, model, why, version=version, run_id=run_id, who=who, via=via, details=details)
    audit = AuditLog.of(env)
    with audit.lock():
        for w in audit.record([event]):
            log.warning("%s", w)
    return {**event, "registry": audit.registry}


def history(env: RuntimeEnv, model: str) -> History:
    return AuditLog.of(env).history(model)
