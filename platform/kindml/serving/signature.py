"""The serving contract of a model kit: request parsing, answers, and the columns the drift monitor watches.

The platform's predictor (:mod:`kindml.serving.predictor`) does the rest the
same way for every workload: v1 / v2 REST on KServe's ModelServer, the Feast
online lookup of :attr:`Signature.entity_keys`, the model kit's feeds, ONNX
Runtime, request metrics and drift windows. A :class:`RequestError` becomes an
HTTP 400 with its message.

Field helpers (``integer``, ``number``, ``choice``, ``text``) validate one value
and name the row and field in their error, so every workload's messages look alike.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_BATCH = 1024


class RequestError(ValueError):
    """A client error: becomes HTTP 400 with this message."""


def where(row: int | None, name: str) -> str:
    return f"instances[{row}].{name}" if row is not None else name


def integer(v: Any, row: int | None, name: str, minimum: int = 0, maximum: int = 2**62) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise RequestError(f"{where(row, name)} must be an integer, got {type(v).__name__}")
    try:
        f = float(v)
    except ValueError:
        raise RequestError(f"{where(row, name)} must be an integer, got {v!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise RequestError(f"{where(row, name)} must be an integer, got {v!r}")
    if f < minimum or f > maximum:
        raise RequestError(f"{where(row, name)} must be between {minimum} and {'2^62' if maximum == 2**62 else maximum}, got {v!r}")
    return int(f)


def number(v: Any, row: int | None, name: str, lo: float, hi: float, allow_none: bool = False) -> float:
    if v is None and allow_none:
        return float("nan")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RequestError(f"{where(row, name)} must be a number, got {type(v).__name__ if v is not None else 'null'}")
    f = float(v)
    if not math.isfinite(f):
        raise RequestError(f"{where(row, name)} must be a finite number, got {v!r}")
    if not lo <= f <= hi:
        raise RequestError(f"{where(row, name)} must be between {lo:g} and {hi:g}, got {v!r}")
    return f


def choice(v: Any, row: int | None, name: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(v, str) or v not in allowed:
        raise RequestError(f"{where(row, name)} must be one of {', '.join(allowed)}; got {v!r}")
    return v


def text(v: Any, row: int | None, name: str, max_chars: int) -> str:
    if not isinstance(v, str):
        raise RequestError(f"{where(row, name)} must be a string, got {type(v).__name__ if v is not None else 'null'}")
    if not v.strip():
        raise RequestError(f"{where(row, name)} is empty: send the text to classify")
    if len(v) > max_chars:
        raise RequestError(f"{where(row, name)} has {len(v)} characters; the limit is {max_chars}")
    return v


def check_instances(instances: Any, max_batch: int, what: str, required: Iterable[str]) -> list[dict[str, Any]]:
    """The common shape checks of a v1 ``instances`` list (a list of objects, not empty, within the batch limit)."""
    if not isinstance(instances, list):
        raise RequestError(f'"instances" must be a list of objects, one per {what}')
    if not instances:
        raise RequestError(f'"instances" is empty: send at least one {what}')
    if len(instances) > max_batch:
        raise RequestError(f'"instances" has {len(instances)} rows; the limit is {max_batch} per request — split the batch')
    if not isinstance(instances[0], dict):
        raise RequestError(f"instances[0] must be an object with fields {', '.join(required)}, got {type(instances[0]).__name__}")
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise RequestError(f"instances[{i}] must be an object, got {type(inst).__name__}")
    return instances


def v2_to_instances(inputs: list[Any], known: Iterable[str], max_batch: int, expected: str) -> list[dict[str, Any]]:
    """Open Inference Protocol columnar inputs (one named 1-D tensor per field) → instance dicts."""
    known = set(known)
    if not inputs:
        raise RequestError(f'"inputs" is empty: send one 1-D tensor per field ({expected})')
    columns: dict[str, list[Any]] = {}
    n: int | None = None
    for inp in inputs:
        name = getattr(inp, "name", None)
        data = inp.data if hasattr(inp, "data") else None
        shape = list(getattr(inp, "shape", []) or [])
        if not isinstance(name, str) or name not in known:
            raise RequestError(f"input {name!r} is not a known field; expected {expected}")
        if data is None:
            raise RequestError(f"input {name!r} has no data")
        if hasattr(data, "tolist"):
            data = data.tolist()
        if not isinstance(data, list):
            data = [data]
        if len(shape) != 1:
            raise RequestError(f"input {name!r} must be 1-D (shape [batch]), got shape {shape}")
        flat = [d.decode("utf-8", "replace") if isinstance(d, bytes) else d for d in data]
        if shape[0] != len(flat):
            raise RequestError(f"input {name!r}: shape {shape} does not match {len(flat)} values")
        if n is not None and len(flat) != n:
            raise RequestError(f"input {name!r} has {len(flat)} values, other inputs have {n}: every input needs one value per row")
        n = len(flat)
        columns[name] = flat
    assert n is not None
    if n > max_batch:
        raise RequestError(f"batch of {n} rows; the limit is {max_batch} per request — split the batch")
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


@dataclass
class Parsed:
    """A validated request: columns (one numpy array per field), row count, and whether to look features up."""

    columns: dict[str, np.ndarray]
    n: int
    lookup: bool = True


@dataclass
class Answer:
    """A scored batch as v1 ``predictions`` (one object per row) and v2 outputs ``(name, datatype, values)``."""

    predictions: list[dict[str, Any]]
    outputs: list[tuple[str, str, list[Any]]] = field(default_factory=list)


class Signature(ABC):
    max_batch: int = MAX_BATCH
    entity_keys: tuple[str, ...] = ()
    """Feast join keys (int64) read from the request; their features are looked up online unless the rows carry them."""
    row_name: str = "row"
    """What one instance is, for messages ("transaction", "text")."""
    feature_service: str | None = None
    """The Feast feature service the predictor reads (keyed by :attr:`entity_keys` only); None: the training one."""

    @property
    @abstractmethod
    def fields(self) -> dict[str, str]:
        """Request field → OIP datatype (``INT64``, ``FP64``, ``BYTES``, ...): v2 metadata and v2 parsing."""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.fields)

    @abstractmethod
    def parse_v1(self, instances: Any) -> Parsed:
        """Validate v1 ``instances``; raise :class:`RequestError` naming the row and field."""

    def parse_v2(self, inputs: list[Any]) -> Parsed:
        return self.parse_v1(v2_to_instances(inputs, self.fields, self.max_batch, ", ".join(self.required)))

    def known_from_columns(self, cols: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Which rows' entities are known when the rows carried their own features (no lookup)."""
        return {k: np.ones(n, dtype=bool) for k in self.entity_keys}

    @abstractmethod
    def respond(self, parsed: Parsed, probs: np.ndarray, known: dict[str, np.ndarray]) -> Answer:
        """The answer for a scored batch (``probs`` from the kit, ``known`` per entity key)."""

    @property
    @abstractmethod
    def outputs(self) -> dict[str, str]:
        """v2 output name → datatype (model metadata)."""

    @abstractmethod
    def monitored(self, cols: Mapping[str, Any], feeds: Mapping[str, np.ndarray], outputs: list[np.ndarray],
                  probs: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(numeric, categorical) columns the drift monitor watches: a fixed, small set of names."""

    def score(self, probs: np.ndarray) -> np.ndarray:
        """The 1-D score whose distribution is watched for prediction drift (binary: p; multiclass: top probability)."""
        p = np.asarray(probs, dtype=np.float64)
        return p.reshape(-1) if p.ndim == 1 else p.max(axis=1)

    @abstractmethod
    def instances(self, frame: Any) -> list[dict[str, Any]]:
        """v1 instances for rows of a DataFrame of events (examples, smoke tests, replayed traffic)."""
