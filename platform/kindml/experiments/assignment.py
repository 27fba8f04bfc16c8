"""Sticky assignment of entities to the champion or the challenger, and the route of one request.

The hash
    ``u = position(entity_id, salt)`` is a number in [0, 1) taken from
    BLAKE2b (8-byte digest, personalisation ``kindml.assign``) over the
    length-prefixed UTF-8 salt followed by the canonical bytes of the entity
    id; the top 53 bits make an exact float. It is a pure function of
    (salt, id): the same in every process, worker, machine and Python version
    -- never Python's ``hash()``, which is randomised per process. Entity ids
    are canonicalised first: ``str`` as UTF-8, ``bytes`` as they are,
    integers (Python or numpy, not bool) as their decimal text, so the entity
    ``42`` and the entity ``"42"`` are the same entity.

The assignment
    ``assign(entity_id, salt, split)`` is ``challenger`` when ``u < split``.
    Hence:

    - *uniform*: BLAKE2b's output is indistinguishable from uniform, so the
      challenger's share converges to ``split`` (the unit tests check it with
      chi-square and Kolmogorov-Smirnov tests over 200,000 ids);
    - *independent across salts*: two salts give unrelated positions, so a
      new experiment (a new salt) reshuffles everyone;
    - *monotone in the split*: an entity in the challenger at 10 % is still in
      it at 20 % (``u < 0.1`` implies ``u < 0.2``); growing a canary only adds
      entities, shrinking it only removes them.

A second family (personalisation ``kindml.bucket``) places each entity in one
of ``buckets`` variance buckets (:func:`bucket`), independent of its arm: the
cluster variance of :mod:`kindml.experiments.sequential` treats the buckets as
independent groups of entities.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kindml.experiments.errors import ExperimentError
from kindml.experiments.spec import ExperimentSpec

Arm = Literal["champion", "challenger"]
ARMS: tuple[Arm, Arm] = ("champion", "challenger")
_ASSIGN = b"kindml.assign"
_BUCKET = b"kindml.bucket"
_SCALE = 2.0 ** -53


def entity_bytes(entity_id: str | bytes | int) -> bytes:
    """The canonical bytes of an entity id (``42`` and ``"42"`` are the same entity)."""
    if isinstance(entity_id, str):
        return entity_id.encode("utf-8")
    if isinstance(entity_id, bytes):
        return entity_id
    if isinstance(entity_id, numbers.Integral) and not isinstance(entity_id, bool | np.bool_):
        return str(int(entity_id)).encode("ascii")
    raise ExperimentError(f"entity id {entity_id!r} ({type(entity_id).__name__}) cannot be assigned",
                          "Use the entity key as a string, bytes or an integer (a float id is ambiguous: 1.0 vs 1).")


def _digest(person: bytes, salt: str, entity_id: str | bytes | int) -> int:
    s = salt.encode("utf-8")
    h = hashlib.blake2b(digest_size=8, person=person)
    h.update(len(s).to_bytes(4, "big"))
    h.update(s)
    h.update(entity_bytes(entity_id))
    return int.from_bytes(h.digest(), "big")


def position(entity_id: str | bytes | int, salt: str) -> float:
    """The entity's fixed position in [0, 1) for this salt."""
    return (_digest(_ASSIGN, salt, entity_id) >> 11) * _SCALE


def _check_split(split: float) -> float:
    split = float(split)
    if not 0.0 <= split <= 1.0:
        raise ExperimentError(f"split {split} is not a share in [0, 1]", "split is the challenger's share of entities.")
    return split


def assign(entity_id: str | bytes | int, salt: str, split: float) -> Arm:
    """``challenger`` for the entities whose position is below ``split``, else ``champion``."""
    return "challenger" if position(entity_id, salt) < _check_split(split) else "champion"


def assign_many(entity_ids: Iterable[str | bytes | int], salt: str, split: float) -> np.ndarray:
    """Vector form of :func:`assign` for a batch: a boolean array, True = challenger."""
    split = _check_split(split)
    return np.fromiter((position(e, salt) < split for e in entity_ids), dtype=bool)


def bucket(entity_id: str | bytes | int, salt: str, buckets: int) -> int:
    """The entity's variance bucket in ``range(buckets)``, independent of its arm."""
    return _digest(_BUCKET, salt, entity_id) % int(buckets)


def buckets_of(entity_ids: Iterable[str | bytes | int], salt: str, buckets: int) -> np.ndarray:
    """Vector form of :func:`bucket`."""
    return np.fromiter((bucket(e, salt, buckets) for e in entity_ids), dtype=np.int64)


@dataclass(frozen=True)
class Route:
    """What the predictor does with one request of an experiment.

    ``arm``: the entity's arm (in shadow: ``challenger`` means "also scored by
    the challenger"). ``answer``: whose prediction goes back to the caller.
    ``score``: the models that score the request (the answering one first).
    ``record``: whose outcome is counted for this request -- one arm in ab and
    canary; both (a pair) in shadow when the challenger scored it.
    """

    arm: Arm
    answer: Arm
    score: tuple[Arm, ...]
    record: tuple[Arm, ...]

    @property
    def shadowed(self) -> bool:
        """The challenger scored the request but its answer is only recorded."""
        return self.answer == "champion" and "challenger" in self.score


def route(spec: ExperimentSpec, entity_id: str | bytes | int) -> Route:
    """The route of one request of ``entity_id`` under the experiment ``spec``."""
    arm = assign(entity_id, spec.salt, spec.challenger_share)
    if spec.mode == "shadow":
        if arm == "challenger":
            return Route(arm=arm, answer="champion", score=("champion", "challenger"), record=("champion", "challenger"))
        return Route(arm=arm, answer="champion", score=("champion",), record=())
    return Route(arm=arm, answer=arm, score=(arm,), record=(arm,))
