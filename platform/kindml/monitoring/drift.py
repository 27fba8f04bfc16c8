"""Bounded sliding-window drift accounting and the drift statistics (PSI, Jensen-Shannon, binned KS).

The window
    :class:`DriftMonitor` keeps, for every monitored input and for the score,
    the *counts per reference bin* of the most recent observations -- never raw
    values. The window is a ring of ``buckets`` sub-windows of
    ``ceil(window / buckets)`` rows each, stored as one ``(buckets, total_bins)``
    integer array plus a running total. When the newest sub-window is full the
    oldest one is subtracted from the total and zeroed (O(total bins),
    independent of traffic), so old data ages out in whole sub-windows: once
    warm, the window holds between ``capacity - sub`` and ``capacity`` rows
    (``capacity = buckets * ceil(window / buckets)``, 4,500..5,000 with the
    defaults). Memory is fixed: ``buckets * total_bins`` int64.

    :meth:`DriftMonitor.observe` is vectorised: per numeric feature one pass of
    the binning kernel :func:`bin_into` over the whole batch (branch-free edge
    comparisons for batches of >= 256 rows, ``np.searchsorted`` below), per
    categorical feature one ``np.searchsorted`` on the sorted category names,
    then a single ``np.bincount`` of the flattened bin indices per touched
    sub-window -- O(features) numpy calls per request, whatever the batch size.
    A single-row request (the common case) takes a pure-Python path
    (``bisect`` + dict lookups, a few microseconds) that bins identically.
    Bin indices are computed outside the lock; only
    the ring update holds it, so several predictor threads may call
    ``observe`` concurrently, and a scrape (:meth:`report`) copies the running
    total under the same lock.

One window for several worker processes
    With ``shared=PATH`` the ring, its row counts and the running total live in
    a file that every process of one predictor maps (``mmap``, ``MAP_SHARED``):
    KServe's ``workers > 1`` serves from several processes, and drift must be
    computed over all of their traffic, as one process would. Updates hold a
    ``flock`` on the file (plus a thread lock), so the window is exactly the
    one a single process would keep for the same arrival order; a scrape in any
    worker reads the same counts. The first process creates the file (zeroed,
    with a header naming its layout and a checksum of the reference counts);
    the others attach and refuse a file of another layout or profile.

Missing values
    NaN in a numeric feature counts in a dedicated *missing* bin placed after
    the last ordered bin (a jump in missingness is drift too). A numeric feature
    absent from a request counts as missing for every row of it; a categorical
    feature absent from a request counts as ``__other__``. Features the profile
    does not know are ignored (label cardinality stays bounded by the profile).

The statistics, between reference counts ``r`` and window counts ``w`` over the same bins
    - **PSI** ``= Σ (q - p) · ln(q / p)`` with ``p``, ``q`` the proportions
      after additive smoothing: ``ε = 1e-4`` is added to every proportion on both
      sides and each side is renormalised (:data:`PSI_EPSILON`). A bin empty on
      both sides contributes exactly 0; a bin empty on one side contributes
      about ``p · ln(p / ε)`` instead of infinity. Natural log (the usual PSI
      scale: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant shift).
    - **Jensen-Shannon divergence**, log base 2, so it lies in [0, 1]; computed on
      the unsmoothed proportions (it is finite without smoothing). This is the
      *divergence*; the JS *distance* (``scipy.spatial.distance.jensenshannon``)
      is its square root.
    - **KS statistic** ``= max_k |P_k - Q_k|`` over the cumulative bin
      proportions (the missing bin sorts last, like NaN in numpy). This is the
      *binned approximation* of the two-sample Kolmogorov-Smirnov statistic:
      the exact statistic is a supremum over every real ``x``, the binned one
      only looks at the bin edges, so ``D_binned <= D_exact <= D_binned +
      max_k max(p_k, q_k)`` (inside a bin both CDFs move by at most that bin's
      mass). With 10 quantile bins it resolves the CDFs at the deciles of the
      training data; location shifts are caught almost fully (their largest
      CDF gap is near the middle, where there is an edge), while differences
      *within* one bin are invisible. Because ``D_binned <= D_exact``, comparing
      it with the classical KS critical values gives a conservative test. No
      p-value is exported (binned data are heavily tied). KS is reported for
      numeric features and the score only: categories have no order.

    Nothing is reported until the window holds ``min_samples`` rows (default
    ``min(500, capacity)``): before that :meth:`DriftMonitor.report` has
    ``ready=False`` and empty statistics, and the Prometheus collector exports
    only ``kindml_window_samples`` (absent series, not NaN: alerts stay silent
    and dashboards show "no data").
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import math
import mmap
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kindml.errors import MonitoringError
from kindml.monitoring.profile import validate_profile

PSI_EPSILON = 1e-4
METHODS_NUMERIC: tuple[str, ...] = ("psi", "js", "ks")
METHODS_CATEGORICAL: tuple[str, ...] = ("psi", "js")
DEFAULT_MIN_SAMPLES = 500
# batches of at least this many rows are binned branch-free (one comparison pass per edge) when a
# feature has at most BRANCHLESS_MAX_EDGES edges; smaller batches use np.searchsorted
BRANCHLESS_MIN_ROWS = 256
BRANCHLESS_MAX_EDGES = 32
# the shared window file: a header of int64 slots, then the ring, the sub-window row counts, the running total
_MAGIC = 0x4B44524946543031  # "KDRIFT01"
_HEADER = 9  # magic, layout version, buckets, total bins, sub-window rows, reference checksum; then the scalar state
_LAYOUT = 1
# the scalar state (head sub-window, rows in the window, rows ever seen) in its own int64 array
_HEAD, _ROWS, _SEEN = 0, 1, 2


# ---- pure statistics on two count vectors -------------------------------------------------

def _counts(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0 or np.any(a < 0) or not np.all(np.isfinite(a)):
        raise ValueError("count vectors must be non-empty, finite and >= 0")
    return a


def _pair(ref_counts: Any, live_counts: Any) -> tuple[np.ndarray, np.ndarray] | None:
    r, w = _counts(ref_counts), _counts(live_counts)
    if r.shape != w.shape:
        raise ValueError(f"count vectors differ in length: {r.size} vs {w.size}")
    if r.sum() == 0 or w.sum() == 0:
        return None
    return r / r.sum(), w / w.sum()


def psi(ref_counts: Any, live_counts: Any, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index (natural log) with additive ε smoothing; NaN if a side is empty."""
    pq = _pair(ref_counts, live_counts)
    if pq is None:
        return math.nan
    p, q = pq[0] + epsilon, pq[1] + epsilon
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def js(ref_counts: Any, live_counts: Any) -> float:
    """Jensen-Shannon divergence in bits (base 2, in [0, 1]); NaN if a side is empty."""
    pq = _pair(ref_counts, live_counts)
    if pq is None:
        return math.nan
    p, q = pq
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(min(1.0, max(0.0, 0.5 * kl_p + 0.5 * kl_q)))


def ks(ref_counts: Any, live_counts: Any) -> float:
    """Binned two-sample KS statistic: max |CDF difference| at the bin edges; NaN if a side is empty."""
    pq = _pair(ref_counts, live_counts)
    if pq is None:
        return math.nan
    p, q = pq
    return float(min(1.0, np.max(np.abs(np.cumsum(p) - np.cumsum(q)))))


STATISTICS = {"psi": psi, "js": js, "ks": ks}


def bin_into(v: np.ndarray, edges: np.ndarray, out: np.ndarray, offset: int = 0, edges_list: tuple[float, ...] | None = None) -> None:
    """The binning kernel: ``out[i] = offset + #(edges <= v[i])`` (``searchsorted(side="right")``), NaN -> ``offset + len(edges) + 1``.

    Batches of at least :data:`BRANCHLESS_MIN_ROWS` values against at most
    :data:`BRANCHLESS_MAX_EDGES` edges count with one vectorised comparison per
    edge: no data-dependent branches (a binary search mispredicts on random
    data), several times faster than ``np.searchsorted``; otherwise ``np.searchsorted``.
    """
    n = v.size
    if n >= BRANCHLESS_MIN_ROWS and edges.size <= BRANCHLESS_MAX_EDGES:
        acc = np.zeros(n, dtype=np.uint8)
        ge = np.empty(n, dtype=np.bool_)
        for e in edges_list if edges_list is not None else edges.tolist():
            np.greater_equal(v, e, out=ge)
            acc += ge
        np.add(acc, np.intp(offset), out=out)
    else:
        np.add(np.searchsorted(edges, v, side="right"), np.intp(offset), out=out)
    nan = np.isnan(v)
    if nan.any():
        out[nan] = offset + edges.size + 1


def bin_counts(values: Any, edges: Any) -> np.ndarray:
    """Counts of ``values`` in the bins of ``edges``: ``len(edges) + 1`` ordered bins, then missing (NaN)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    e = np.asarray(edges, dtype=np.float64)
    idx = np.empty(v.size, dtype=np.intp)
    bin_into(v, e, idx)
    return np.bincount(idx, minlength=e.size + 2)


# ---- the sliding window --------------------------------------------------------------------

@dataclass(frozen=True)
class _NumericSlot:
    name: str
    edges: np.ndarray
    offset: int
    edges_list: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges_list", tuple(self.edges.tolist()))

    @property
    def size(self) -> int:  # ordered bins + the missing bin
        return self.edges.size + 2


@dataclass(frozen=True)
class _CategoricalSlot:
    name: str
    sorted_names: np.ndarray  # known categories (not __other__), sorted, unicode
    to_profile: np.ndarray  # position in sorted_names -> index in the profile's category list
    other: int  # index of __other__ in the profile's category list
    offset: int
    size: int


@dataclass(frozen=True)
class DriftReport:
    """Drift of one monitor's window at one moment (what a scrape exports)."""

    model: str
    version: str
    samples: int
    ready: bool
    features: dict[str, dict[str, float]] = field(default_factory=dict)
    prediction: dict[str, float] = field(default_factory=dict)

    def max_feature(self, method: str = "psi") -> dict[str, float]:
        return {f: v[method] for f, v in self.features.items() if method in v}


class DriftMonitor:
    """Fixed-memory sliding-window histograms of live inputs and scores against a reference profile.

    ``window`` rows in ``buckets`` sub-windows (see the module docstring);
    ``min_samples`` rows before any statistic is reported; ``shared``: a file
    holding the window for every process that passes the same path.
    """

    def __init__(
        self,
        profile: dict[str, Any],
        model: str,
        version: str,
        window: int = 5000,
        buckets: int = 10,
        min_samples: int | None = None,
        shared: str | Path | None = None,
    ) -> None:
        if not (isinstance(window, int) and isinstance(buckets, int) and 1 <= buckets <= window):
            raise MonitoringError(f"drift window {window!r} with {buckets!r} sub-windows is not usable",
                                  "Use a window of at least as many rows as sub-windows (defaults: 5000 rows, 10 sub-windows).")
        prof = validate_profile(profile)
        self.model = str(model)
        self.version = str(version)
        self.sub_window = -(-window // buckets)
        self.capacity = self.sub_window * buckets
        self.window = window
        self.buckets = buckets
        self.min_samples = min(DEFAULT_MIN_SAMPLES, self.capacity) if min_samples is None else max(1, min(int(min_samples), self.capacity))
        self.reference_rows = prof.rows

        offset = 0
        self._numeric: list[_NumericSlot] = []
        ref: list[np.ndarray] = []
        for name, nref in prof.numeric.items():
            slot = _NumericSlot(name, np.asarray(nref.edges, dtype=np.float64), offset)
            self._numeric.append(slot)
            ref.append(np.asarray([*nref.counts, nref.missing], dtype=np.int64))
            offset += slot.size
        self._categorical: list[_CategoricalSlot] = []
        for name, cref in prof.categorical.items():
            known = np.asarray(cref.categories[:-1], dtype=str)
            order = np.argsort(known, kind="stable")
            slot = _CategoricalSlot(name, known[order], order.astype(np.int64), len(cref.categories) - 1, offset, len(cref.categories))
            self._categorical.append(slot)
            ref.append(np.asarray(cref.counts, dtype=np.int64))
            offset += slot.size
        self._score = _NumericSlot("__score__", np.asarray(prof.score.edges, dtype=np.float64), offset)
        ref.append(np.asarray([*prof.score.counts, prof.score.missing], dtype=np.int64))
        offset += self._score.size
        self.total_bins = offset
        self._reference = np.concatenate(ref)
        self._slices = {s.name: slice(s.offset, s.offset + s.size) for s in [*self._numeric, *self._categorical]}
        self._score_slice = slice(self._score.offset, self._score.offset + self._score.size)
        self._rows = len(self._numeric) + len(self._categorical) + 1
        # the one-row path (a single v1 instance: the common request) avoids numpy call overhead
        self._edges_py = [(s.name, s.edges.tolist(), s.offset, s.edges.size + 1) for s in self._numeric]
        self._cats_py = [(c.name, {str(n): int(c.to_profile[i]) for i, n in enumerate(c.sorted_names.tolist())}, c.offset, c.other)
                         for c in self._categorical]
        self._score_py = (self._score.edges.tolist(), self._score.offset, self._score.edges.size + 1)

        self.shared: Path | None = None
        if shared is None:
            self._lock: Any = threading.Lock()
            buf = np.zeros(3 + buckets * self.total_bins + buckets + self.total_bins, dtype=np.int64)
        else:
            self.shared = Path(shared)
            self._shared_file = _SharedFile(self.shared, self._layout())
            self._lock = self._shared_file.lock
            buf = self._shared_file.array[_HEADER - 3:]  # the last 3 header slots hold the scalar state
        self._state = buf[:3]
        rest = buf[3:]
        self._ring = rest[:buckets * self.total_bins].reshape(buckets, self.total_bins)
        self._ring_rows = rest[buckets * self.total_bins:buckets * self.total_bins + buckets]
        self._total = rest[buckets * self.total_bins + buckets:]

    def _layout(self) -> tuple[int, ...]:
        """The header a shared window file must carry (what makes two monitors' windows the same thing)."""
        return (_MAGIC, _LAYOUT, self.buckets, self.total_bins, self.sub_window, zlib.crc32(self._reference.tobytes()))

    @property
    def samples_seen(self) -> int:
        """Rows ever observed (in every process sharing the window)."""
        return int(self._state[_SEEN])

    # -- introspection
    @property
    def numeric_features(self) -> list[str]:
        return [s.name for s in self._numeric]

    @property
    def categorical_features(self) -> list[str]:
        return [s.name for s in self._categorical]

    @property
    def features(self) -> list[str]:
        return [*self.numeric_features, *self.categorical_features]

    @property
    def memory_bytes(self) -> int:
        return int(self._ring.nbytes + self._ring_rows.nbytes + self._total.nbytes)

    # -- ingestion
    @staticmethod
    def _numeric_bins(slot: _NumericSlot, values: Any, n: int, out: np.ndarray) -> None:
        if values is None:
            out[:] = slot.offset + slot.edges.size + 1
            return
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size != n:
            raise ValueError(f"{slot.name}: {v.size} values for {n} scores")
        bin_into(v, slot.edges, out, slot.offset, slot.edges_list)

    @staticmethod
    def _categorical_bins(slot: _CategoricalSlot, values: Any, n: int, out: np.ndarray) -> None:
        if values is None or slot.sorted_names.size == 0:
            out[:] = slot.offset + slot.other
            return
        v = np.asarray(values)
        if v.dtype.kind != "U":
            v = v.astype(str)
        v = v.reshape(-1)
        if v.size != n:
            raise ValueError(f"{slot.name}: {v.size} values for {n} scores")
        pos = np.minimum(np.searchsorted(slot.sorted_names, v), slot.sorted_names.size - 1)
        hit = slot.sorted_names[pos] == v
        out[:] = np.where(hit, slot.to_profile[pos], slot.other) + slot.offset

    def bin_indices(self, numeric: dict[str, Any], categorical: dict[str, Any], scores: Any) -> np.ndarray:
        """The flat bin index of every (feature, row): an int array of shape (features + 1, rows). Pure; no lock."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        n = s.size
        idx = np.empty((self._rows, n), dtype=np.intp)
        i = 0
        for slot in self._numeric:
            self._numeric_bins(slot, numeric.get(slot.name), n, idx[i])
            i += 1
        for cslot in self._categorical:
            self._categorical_bins(cslot, categorical.get(cslot.name), n, idx[i])
            i += 1
        self._numeric_bins(self._score, s, n, idx[i])
        return idx

    @staticmethod
    def _first(values: Any) -> Any:
        if isinstance(values, np.ndarray):
            if values.size != 1:
                raise ValueError(f"{values.size} values for 1 score")
            return values.reshape(-1)[0]
        if isinstance(values, (list, tuple)):
            if len(values) != 1:
                raise ValueError(f"{len(values)} values for 1 score")
            return values[0]
        return values

    def _one_row(self, numeric: dict[str, Any], categorical: dict[str, Any], score: float) -> np.ndarray:
        out: list[int] = []
        for name, edges, offset, missing in self._edges_py:
            v = numeric.get(name)
            if v is None:
                out.append(offset + missing)
                continue
            x = float(self._first(v))
            out.append(offset + (missing if x != x else bisect.bisect_right(edges, x)))
        for name, index, offset, other in self._cats_py:
            v = categorical.get(name)
            out.append(offset + (other if v is None else index.get(str(self._first(v)), other)))
        edges, offset, missing = self._score_py
        out.append(offset + (missing if score != score else bisect.bisect_right(edges, score)))
        return np.asarray(out, dtype=np.intp)

    def observe(self, numeric: dict[str, Any], categorical: dict[str, Any], scores: Any) -> None:
        """Account one scored batch: ``numeric``/``categorical`` map feature -> one value per score."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if s.size == 1:
            flat = self._one_row(numeric, categorical, float(s[0]))
            st = self._state
            with self._lock:
                head = st.item(_HEAD)
                if self._ring_rows.item(head) >= self.sub_window:
                    self._advance()
                    head = st.item(_HEAD)
                self._ring[head, flat] += 1  # one row: its flat indices are distinct (one per feature)
                self._total[flat] += 1
                self._ring_rows[head] += 1
                st[_ROWS:_SEEN + 1] += 1  # rows in the window and rows ever seen, in one operation
            return
        self.observe_bins(self.bin_indices(numeric, categorical, s))

    def _advance(self) -> None:
        """Move to the oldest sub-window and empty it (caller holds the lock)."""
        st = self._state
        head = (int(st[_HEAD]) + 1) % self.buckets
        st[_HEAD] = head
        self._total -= self._ring[head]
        st[_ROWS] -= self._ring_rows[head]
        self._ring[head] = 0
        self._ring_rows[head] = 0

    def observe_bins(self, idx: np.ndarray) -> None:
        """Add precomputed :meth:`bin_indices` to the window (the part that holds the lock)."""
        n = idx.shape[1]
        if n == 0:
            return
        st = self._state
        with self._lock:
            pos = 0
            while pos < n:
                room = self.sub_window - int(self._ring_rows[st[_HEAD]])
                if room == 0:
                    self._advance()
                    room = self.sub_window
                take = min(room, n - pos)
                part = idx[:, pos:pos + take] if (pos or take < n) else idx
                c = np.bincount(part.ravel(), minlength=self.total_bins)
                head = st[_HEAD]
                self._ring[head] += c
                self._total += c
                self._ring_rows[head] += take
                st[_ROWS] += take
                pos += take
            st[_SEEN] += n

    def reset(self) -> None:
        with self._lock:
            self._ring[:] = 0
            self._ring_rows[:] = 0
            self._total[:] = 0
            self._state[_HEAD] = 0
            self._state[_ROWS] = 0

    # -- reading
    def window_samples(self) -> int:
        with self._lock:
            return int(self._state[_ROWS])

    def window_counts(self) -> tuple[np.ndarray, int]:
        """A copy of the window's flat counts and its row count (consistent with each other)."""
        with self._lock:
            return self._total.copy(), int(self._state[_ROWS])

    def counts(self, feature: str) -> tuple[np.ndarray, np.ndarray]:
        """(reference counts, window counts) of one feature, or of the score with ``"__score__"``."""
        sl = self._score_slice if feature == "__score__" else self._slices[feature]
        total, _ = self.window_counts()
        return self._reference[sl].copy(), total[sl]

    def report(self) -> DriftReport:
        total, rows = self.window_counts()
        if rows < self.min_samples:
            return DriftReport(self.model, self.version, rows, False)
        features: dict[str, dict[str, float]] = {}
        for slot in self._numeric:
            sl = self._slices[slot.name]
            features[slot.name] = {m: STATISTICS[m](self._reference[sl], total[sl]) for m in METHODS_NUMERIC}
        for cslot in self._categorical:
            sl = self._slices[cslot.name]
            features[cslot.name] = {m: STATISTICS[m](self._reference[sl], total[sl]) for m in METHODS_CATEGORICAL}
        sl = self._score_slice
        prediction = {m: STATISTICS[m](self._reference[sl], total[sl]) for m in METHODS_NUMERIC}
        return DriftReport(self.model, self.version, rows, True, features, prediction)

    def snapshot(self) -> dict[str, Any]:
        """The report as a plain dict: ``{"samples", "ready", "features": {f: {method: v}}, "prediction": {method: v}}``."""
        r = self.report()
        return {"samples": r.samples, "ready": r.ready, "features": r.features, "prediction": r.prediction}


class _SharedLock:
    """A thread lock plus an exclusive ``flock`` on the window file: one writer among threads and processes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._thread = threading.Lock()

    def __enter__(self) -> None:
        self._thread.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


class _SharedFile:
    """The window file, mapped into this process: created zeroed with its header if absent, else checked against it."""

    def __init__(self, path: Path, layout: tuple[int, ...]) -> None:
        buckets, total_bins = layout[2], layout[3]
        words = _HEADER + buckets * total_bins + buckets + total_bins
        size = words * 8
        header = np.zeros(_HEADER, dtype=np.int64)
        header[:len(layout)] = layout
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            fd = self._create(path, header, size)
        try:
            if os.fstat(fd).st_size != size:
                raise MonitoringError(f"the shared drift window {path} belongs to another model version or window layout "
                                      f"({os.fstat(fd).st_size} bytes; this monitor needs {size})",
                                      "Every worker of one predictor must serve the same model and window; remove the file before a new server starts.")
            self._mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.array = np.frombuffer(self._mm, dtype=np.int64)
        if not np.array_equal(self.array[:len(layout)], header[:len(layout)]):
            raise MonitoringError(f"the shared drift window {path} belongs to another model version or window layout",
                                  "Every worker of one predictor must serve the same model and window; remove the file before a new server starts.")
        self.lock = _SharedLock(fd)

    @staticmethod
    def _create(path: Path, header: np.ndarray, size: int) -> int:
        """Write a zeroed file with its header beside ``path`` and link it into place (atomic; the first creator wins)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        with open(tmp, "wb") as f:
            f.truncate(size)
            f.write(header.tobytes())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return os.open(path, os.O_RDWR)
