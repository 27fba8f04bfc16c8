"""Delayed labels in: validate outcome records and join them to the prediction log.

One validation serves both entry points — ``POST /v1/feedback`` on the
predictor and ``kindml feedback ingest FILE`` — so they accept and refuse the
same things. A record is ``{"prediction_id": "...", "outcome": ...}``; the
outcome's type depends on the task (binary 0/1 or true/false, multiclass a
class name, regression a finite number). A malformed batch is refused whole,
naming every bad record (nothing half-applied); a well-formed batch is joined
and the answer says which ids were joined, unknown or already labelled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kindml.errors import DataError
from kindml.monitoring.quality import FeedbackResult, PredictionLog

MAX_RECORDS = 10_000
MAX_ID_CHARS = 128
MAX_LABEL_CHARS = 200
MAX_ERRORS_SHOWN = 5


class FeedbackError(DataError):
    """Outcome records that cannot be joined as given (HTTP 400 on the predictor)."""


def _outcome(task: str, value: Any, where: str) -> str:
    if value is None:
        raise ValueError(f"{where}.outcome is missing")
    if task == "binary":
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int | float) and value in (0, 1):
            return str(int(value))
        if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
            return "1" if value.strip().lower() in ("1", "true") else "0"
        raise ValueError(f"{where}.outcome must be 0/1 (or true/false) for a binary model, got {value!r}")
    if task in ("regression", "ranking"):
        if isinstance(value, bool):
            raise ValueError(f"{where}.outcome must be a number, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}.outcome must be a number, got {value!r}") from None
        if not math.isfinite(f):
            raise ValueError(f"{where}.outcome must be a finite number, got {value!r}")
        return repr(f)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"{where}.outcome must be a class name, got {type(value).__name__}")
    label = str(value).strip()
    if not label or len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"{where}.outcome must be a class name of 1..{MAX_LABEL_CHARS} characters")
    return label


def parse_records(records: Any) -> list[tuple[str, Any]]:
    """Structurally valid ``(prediction_id, raw outcome)`` pairs, or :class:`FeedbackError` naming every bad record."""
    if isinstance(records, dict) and "outcomes" in records:
        records = records["outcomes"]
    if not isinstance(records, list) or not records:
        raise FeedbackError("feedback must be a non-empty list of {prediction_id, outcome} records",
                            'Send {"outcomes": [{"prediction_id": "<id from the prediction>", "outcome": 1}]}.')
    if len(records) > MAX_RECORDS:
        raise FeedbackError(f"{len(records)} records in one batch; at most {MAX_RECORDS}", "Split the outcomes into smaller batches.")
    out: list[tuple[str, Any]] = []
    errors: list[str] = []
    seen: set[str] = set()
    for i, rec in enumerate(records):
        where = f"outcomes[{i}]"
        if not isinstance(rec, dict):
            errors.append(f"{where} must be an object with prediction_id and outcome")
            continue
        unknown = set(rec) - {"prediction_id", "outcome"}
        pid = rec.get("prediction_id")
        if unknown:
            errors.append(f"{where} has unknown fields {sorted(unknown)}")
        elif not isinstance(pid, str) or not pid.strip() or len(pid) > MAX_ID_CHARS:
            errors.append(f"{where}.prediction_id must be the id string the predictor returned (1..{MAX_ID_CHARS} chars)")
        elif pid in seen:
            errors.append(f"{where}.prediction_id {pid!r} appears twice in this batch")
        elif rec.get("outcome") is None:
            errors.append(f"{where}.outcome is missing")
        else:
            seen.add(pid)
            out.append((pid, rec["outcome"]))
    _raise(errors)
    return out


def _raise(errors: list[str]) -> None:
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise FeedbackError("; ".join(errors[:MAX_ERRORS_SHOWN]) + more,
                            "Fix these records and send the batch again; nothing in it was applied.")


def check_outcomes(pairs: list[tuple[str, Any]], owners: dict[str, str],
                   models: dict[str, tuple[str, list[str] | None]]) -> list[tuple[str, str]]:
    """Each known id's outcome checked against its model's task (and classes); unknown ids pass through untouched."""
    out: list[tuple[str, str]] = []
    errors: list[str] = []
    for i, (pid, raw) in enumerate(pairs):
        model = owners.get(pid)
        if model is None:
            out.append((pid, str(raw)))
            continue
        task, classes = models.get(model, ("multiclass", None))
        where = f"outcomes[{i}] ({model})"
        try:
            label = _outcome(task, raw, where)
            if classes and task == "multiclass" and label not in classes:
                raise ValueError(f"{where}.outcome {label!r} is not a class of this model ({', '.join(classes)})")
            out.append((pid, label))
        except ValueError as exc:
            errors.append(str(exc))
    _raise(errors)
    return out


def read_file(path: Path) -> list[dict[str, Any]]:
    """Outcome records from CSV, JSON (a list or ``{"outcomes": [...]}``), JSON Lines or Parquet."""
    if not path.is_file():
        raise FeedbackError(f"no outcome file at {path}", "Pass a CSV, JSON, JSONL or Parquet file with prediction_id and outcome columns.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".json", ".jsonl", ".ndjson"):
            text = path.read_text(encoding="utf-8")
            if suffix == ".json":
                data = json.loads(text)
                return data["outcomes"] if isinstance(data, dict) and "outcomes" in data else data
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if suffix in (".csv", ".parquet"):
            import pandas as pd

            df = pd.read_csv(path, dtype={"prediction_id": str}, keep_default_na=False) if suffix == ".csv" else pd.read_parquet(path)
            missing = {"prediction_id", "outcome"} - set(df.columns)
            if missing:
                raise FeedbackError(f"{path} lacks the column(s) {sorted(missing)} (it has {list(df.columns)})",
                                    "The file needs a prediction_id and an outcome column.")
            df = df[["prediction_id", "outcome"]]
            return [{"prediction_id": str(r["prediction_id"]), "outcome": _plain(r["outcome"])} for r in df.to_dict(orient="records")]
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, OSError) as exc:
        if isinstance(exc, FeedbackError):
            raise
        raise FeedbackError(f"cannot read {path}: {exc}", "Check the file's format matches its extension.") from None
    raise FeedbackError(f"unsupported outcome file type {suffix or '(none)'!r}", "Use .csv, .json, .jsonl or .parquet.")


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def ingest(log: PredictionLog, records: Any) -> FeedbackResult:
    """Validate and join a batch: malformed → :class:`FeedbackError` (nothing applied); else joined / unknown / duplicate ids."""
    pairs = parse_records(records)
    owners = log.owners(pid for pid, _ in pairs)
    return log.feedback(check_outcomes(pairs, owners, log.models()))


LOG_FILE = "predictions.db"


def log_path(serving_dir: Path) -> Path:
    """Where local predictors log their predictions (``<workspace>/serving/predictions.db``)."""
    return serving_dir / LOG_FILE


def post(url: str, records: list[dict[str, Any]], batch: int = 1_000, timeout: float = 30.0) -> dict[str, Any]:
    """Send outcome records to a predictor's ``POST /v1/feedback`` in batches; the summed answer."""
    import urllib.error
    import urllib.request

    from kindml.errors import ServingError

    total: dict[str, Any] = {"joined": 0, "unknown": [], "duplicate": []}
    endpoint = url.rstrip("/") + "/v1/feedback"
    for i in range(0, len(records), batch):
        body = json.dumps({"outcomes": records[i : i + batch]}).encode()
        req = urllib.request.Request(endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the user's predictor URL)
                answer = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}") if exc.code in (404, 409) else None
            if answer is None:
                detail = exc.read().decode(errors="replace")[:500]
                raise ServingError(f"{endpoint} answered {exc.code}: {detail}",
                                   "Fix the records it names, or check the URL points at a kindml predictor.") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServingError(f"cannot reach {endpoint}: {exc}", "Start the predictor (`kindml serve start`) or pass the right --url.") from None
        total["joined"] += int(answer.get("joined", 0))
        total["unknown"] += list(answer.get("unknown", []))
        total["duplicate"] += list(answer.get("duplicate", []))
    return total
