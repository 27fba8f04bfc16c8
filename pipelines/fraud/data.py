"""A seeded generator of a realistic card-fraud dataset.

The world: accounts (the Feast entity ``account_id``) with a credit limit, a
home country, an age and hidden habits (typical amount and its spread, activity
level, category preferences, online and night-time propensity); merchants with
a fixed category and country. Transactions are drawn from those habits, and a
transaction is fraud with a probability that rises with

- an amount far above the account's habit for that category,
- risky categories (electronics, digital goods, gambling, travel),
- night hours, card-not-present (online) use, a foreign country,
- young accounts and merchants never seen before,

plus noise: the signal is learnable from the account's history (amount mean
and spread, shares) together with the transaction, but not trivially.

Knobs:

- :class:`DriftSpec`: amount shift, category-mix shift, new merchants
  (for live traffic that drifts away from training);
- :func:`corrupt`: nulls, out-of-range values, bad categories and future
  timestamps, with an exact manifest of what was damaged (so validation can be
  checked against ground truth).

Everything is a pure function of the seed and the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kindml.errors import ConfigError
from kindml.pipelines.fraud.schema import CATEGORIES, CHANNELS, COUNTRIES, SEGMENTS

CORRUPTION_KINDS: tuple[str, ...] = ("null", "out_of_range", "bad_category", "future_timestamp")


class DriftSpec(BaseModel):
    """How far generated traffic moves away from the training distribution."""

    model_config = ConfigDict(extra="forbid")

    amount_shift: float = Field(0.0, ge=-3.0, le=3.0, description="Shift of log(amount), in units of each account's log-amount sigma.")
    category_shift: float = Field(0.0, ge=0.0, le=1.0, description="Share of the merchant-category mix moved to a drifted mix (0: none, 1: all).")
    new_merchant_rate: float = Field(0.0, ge=0.0, le=1.0, description="Share of transactions at merchants never seen before.")

    @classmethod
    def from_severity(cls, severity: float) -> DriftSpec:
        """One knob for the CLI: 0 is no drift, 1 is strong drift on every axis."""
        if not 0.0 <= severity <= 3.0:
            raise ConfigError(
                f"drift severity {severity} is out of range",
                "Use a value between 0 (no drift) and 3 (extreme); 1 is a strong, realistic drift.",
            )
        return cls(
            amount_shift=round(0.75 * severity, 4),
            category_shift=round(min(1.0, 0.5 * severity), 4),
            new_merchant_rate=round(min(1.0, 0.3 * severity), 4),
        )

    @property
    def is_zero(self) -> bool:
        return self.amount_shift == 0 and self.category_shift == 0 and self.new_merchant_rate == 0

# Base category mix and how drift moves it (toward online / risky spending).
_BASE_MIX = np.array([0.22, 0.16, 0.10, 0.16, 0.07, 0.08, 0.05, 0.07, 0.06, 0.03])
_DRIFT_MIX = np.array([0.08, 0.10, 0.05, 0.12, 0.04, 0.10, 0.12, 0.15, 0.16, 0.08])
# log-amount offset of each category relative to the account's habit
_CAT_OFFSET = np.array([-0.3, -0.2, 0.0, 0.2, 0.1, 0.0, 1.2, 0.9, -0.4, 0.3])
_CAT_RISK = np.array([-0.6, -0.4, -0.3, 0.0, -0.4, 0.0, 0.6, 0.9, 0.8, 1.2])
_CAT_ONLINE = np.array([0.05, 0.1, 0.0, 0.35, 0.15, 0.4, 0.6, 0.55, 0.95, 0.7])
# hour-of-day profile of ordinary spending
_HOUR_PROFILE = np.array(
    [0.5, 0.3, 0.2, 0.2, 0.2, 0.4, 1.0, 2.0, 3.5, 4.5, 5.0, 5.5, 6.5, 6.0, 5.5, 5.5, 6.0, 6.5, 7.0, 6.5, 5.0, 3.5, 2.0, 1.0]
)
_INTERCEPT = -6.75


@dataclass(frozen=True)
class CorruptionManifest:
    """Ground truth of what :func:`corrupt` damaged: counts per column and kind."""

    rows: int
    counts: dict[str, int] = field(default_factory=dict)  # "<kind>:<column>" -> rows
    row_ids: list[str] = field(default_factory=list)  # transaction_ids of damaged rows

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "counts": dict(self.counts)}


@dataclass
class FraudWorld:
    """The hidden state of the generated world; transactions are drawn from it."""

    seed: int
    n_accounts: int
    n_merchants: int
    end: datetime  # exclusive end of history (midnight UTC after the last day)
    days: int
    accounts: pd.DataFrame = field(init=False)
    _hidden: dict[str, np.ndarray] = field(init=False, repr=False)
    _merchant_cat: np.ndarray = field(init=False, repr=False)
    _merchant_country: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 1])
        n = self.n_accounts
        start = self.end - timedelta(days=self.days)
        # ~15% of accounts open during the history window, the rest earlier
        age_days = np.where(
            rng.random(n) < 0.15,
            -rng.uniform(0, self.days * 0.8, n),
            rng.gamma(2.0, 500.0, n) + 1.0,
        )
        created = pd.to_datetime(start, utc=True) - pd.to_timedelta(age_days, unit="D")
        home = rng.choice(len(COUNTRIES), n, p=_country_mix())
        segment = rng.choice(len(SEGMENTS), n, p=[0.75, 0.18, 0.07])
        mu = rng.normal(3.4, 0.55, n) + np.array([0.0, 0.5, 0.8])[segment]
        sigma = rng.uniform(0.45, 0.95, n)
        credit = np.round(np.exp(mu + 3.2 + rng.normal(0, 0.35, n)) / 100.0) * 100.0 + 500.0
        self.accounts = pd.DataFrame(
            {
                "account_id": np.arange(100_001, 100_001 + n, dtype=np.int64),
                "created_at": created.floor("s"),
                "credit_limit": credit.astype(np.float64),
                "home_country": np.array(COUNTRIES, dtype=object)[home],
                "segment": np.array(SEGMENTS, dtype=object)[segment],
            }
        )
        prefs = rng.dirichlet(_BASE_MIX * 12.0, n)
        self._hidden = {
            "mu": mu,
            "sigma": sigma,
            "activity": rng.lognormal(0.0, 0.7, n),
            "online": rng.beta(2.0, 5.0, n),
            "night": rng.beta(1.2, 12.0, n),
            "travel": rng.beta(1.0, 30.0, n),
            "prefs": prefs,
            "home": home,
        }
        m_rng = np.random.default_rng([self.seed, 2])
        self._merchant_cat = m_rng.choice(len(CATEGORIES), self.n_merchants, p=_BASE_MIX)
        self._merchant_country = m_rng.choice(len(COUNTRIES), self.n_merchants, p=_country_mix())

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    def merchant_ids(self) -> np.ndarray:
        return np.arange(1, self.n_merchants + 1, dtype=np.int64)

    def transactions(
        self,
        n: int,
        start: datetime,
        end: datetime,
        drift: DriftSpec | None = None,
        stream: int = 0,
        concept: float = 0.0,
    ) -> pd.DataFrame:
        """Draw ``n`` transactions with timestamps in ``[start, end)``.

        ``stream`` selects an independent random stream, so history (0) and
        live traffic (1, 2, ...) never repeat each other. ``concept`` (0..1)
        shifts the *label relationship* only: the same stream draws the same
        transactions, but night, foreign and risky-category spending stop
        marking fraud while grocery and contactless card-present fraud appear
        (a fraud ring switching tactics) — quality drops with no input drift.
        """
        drift = drift or DriftSpec()
        rng = np.random.default_rng([self.seed, 10 + stream])
        h = self._hidden
        created = self.accounts["created_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        t0 = pd.Timestamp(start).value
        t1 = pd.Timestamp(end).value
        open_from = np.maximum(created, t0)
        eligible = open_from < t1 - 3_600 * 10**9
        if not eligible.any():
            raise ValueError("no account is open in the requested window")
        # an account's share of traffic ~ activity x how long it is open in the window
        weight = np.where(eligible, h["activity"] * (t1 - open_from) / (t1 - t0), 0.0)
        acct = rng.choice(self.n_accounts, n, p=weight / weight.sum())
        day_ns = 86_400 * 10**9
        lo = open_from[acct]
        # day uniformly within the open span, hour from the daily profile (+ night habit)
        days_open = np.maximum(1, (t1 - lo) // day_ns)
        day_idx = (rng.random(n) * days_open).astype(np.int64)
        base_day = lo - (lo - t0) % day_ns  # align to midnight of the window grid
        night = rng.random(n) < h["night"][acct]
        hours = np.where(
            night,
            rng.integers(0, 6, n),
            rng.choice(24, n, p=_HOUR_PROFILE / _HOUR_PROFILE.sum()),
        )
        ts = base_day + day_idx * day_ns + hours * 3_600 * 10**9 + rng.integers(0, 3_600 * 10**9, n)
        ts = np.clip(ts, lo, t1 - 1)
        # category from the account's preferences, moved toward the drift mix
        prefs = h["prefs"][acct]
        if drift.category_shift > 0:
            prefs = (1.0 - drift.category_shift) * prefs + drift.category_shift * _DRIFT_MIX
        cat = (rng.random((n, 1)) > np.cumsum(prefs, axis=1)).sum(axis=1)
        cat = np.minimum(cat, len(CATEGORIES) - 1)
        # a merchant of that category; some are brand new
        merchant = _pick_merchant(rng, self._merchant_cat, cat)
        new_merchant = rng.random(n) < drift.new_merchant_rate
        n_new = int(new_merchant.sum())
        merchant[new_merchant] = self.n_merchants + 1 + rng.integers(0, max(50, self.n_merchants // 2), n_new)
        # amount: the account's habit for the category; drift shifts it
        z = rng.normal(0.0, 1.0, n)
        z_tail = np.where(rng.random(n) < 0.04, rng.exponential(1.5, n), 0.0)  # rare splurges
        log_amt = h["mu"][acct] + _CAT_OFFSET[cat] + h["sigma"][acct] * (z + z_tail + drift.amount_shift)
        amount = np.round(np.clip(np.exp(log_amt), 0.5, 20_000.0), 2)
        online_p = np.clip(0.5 * h["online"][acct] + 0.5 * _CAT_ONLINE[cat], 0.0, 1.0)
        online = rng.random(n) < online_p
        channel = np.where(online, 1, np.where(rng.random(n) < 0.45, 2, 0))
        foreign_p = np.clip(h["travel"][acct] + np.where(cat == CATEGORIES.index("travel"), 0.25, 0.0), 0.0, 0.9)
        foreign = rng.random(n) < foreign_p
        home = h["home"][acct]
        country = np.where(foreign, (home + rng.integers(1, len(COUNTRIES), n)) % len(COUNTRIES), home)
        # the label
        age_days = (ts - created[acct]) / day_ns
        surprise = np.maximum(0.0, z + z_tail + drift.amount_shift)
        c = float(np.clip(concept, 0.0, 1.0))
        logit = (
            _INTERCEPT
            + 2.0 * surprise * (1.0 - 0.8 * c)
            + 1.3 * _CAT_RISK[cat] * (1.0 - c)
            + 1.4 * night * (1.0 - c)
            + 0.9 * online
            + 2.0 * foreign * (1.0 - 0.8 * c)
            + 1.4 * (age_days < 30)
            + 1.6 * new_merchant
            + c * (3.2 * (cat == CATEGORIES.index("grocery")) + 2.2 * (channel == 2))
            + rng.normal(0.0, 0.3, n)
        )
        is_fraud = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        order = np.argsort(ts, kind="stable")
        df = pd.DataFrame(
            {
                "account_id": self.accounts["account_id"].to_numpy()[acct],
                "merchant_id": merchant.astype(np.int64),
                "merchant_category": np.array(CATEGORIES, dtype=object)[cat],
                "amount": amount,
                "channel": np.array(CHANNELS, dtype=object)[channel],
                "country": np.array(COUNTRIES, dtype=object)[country],
                "event_timestamp": pd.to_datetime(ts, utc=True).floor("s"),
                "is_fraud": is_fraud,
            }
        ).iloc[order]
        df.insert(0, "transaction_id", [f"t{stream}-{i:09d}" for i in range(n)])
        return df.reset_index(drop=True)


def _country_mix() -> np.ndarray:
    p = np.array([0.45, 0.1, 0.1, 0.08, 0.07, 0.05, 0.05, 0.04, 0.03, 0.03])
    return p / p.sum()


def _pick_merchant(rng: np.random.Generator, merchant_cat: np.ndarray, cat: np.ndarray) -> np.ndarray:
    out = np.empty(len(cat), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        rows = np.flatnonzero(cat == c)
        if rows.size == 0:
            continue
        pool = np.flatnonzero(merchant_cat == c)
        if pool.size == 0:  # tiny worlds: fall back to any merchant
            pool = np.arange(len(merchant_cat))
        # a few merchants per category are popular (Zipf-like)
        w = 1.0 / np.arange(1, pool.size + 1) ** 0.8
        out[rows] = pool[rng.choice(pool.size, rows.size, p=w / w.sum())] + 1
    return out


def end_of_history(end_date: date | None) -> datetime:
    """Midnight UTC after ``end_date`` (default: yesterday, the last complete UTC day, so no row lies in the future)."""
    d = end_date or (datetime.now(UTC).date() - timedelta(days=1))
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)


def build_world(seed: int, accounts: int, merchants: int, days: int, end_date: date | None) -> FraudWorld:
    return FraudWorld(seed=seed, n_accounts=accounts, n_merchants=merchants, end=end_of_history(end_date), days=days)


def generate_history(world: FraudWorld, rows: int, drift: DriftSpec | None = None) -> pd.DataFrame:
    """The history window; with ``drift`` the world has already moved (what a retraining run sees)."""
    if drift is not None and drift.is_zero:
        drift = None
    return world.transactions(rows, world.start, world.end, drift=drift, stream=0 if drift is None else 5)


def generate_live(world: FraudWorld, rows: int, drift: DriftSpec | None, days: int = 1, stream: int = 1, concept: float = 0.0) -> pd.DataFrame:
    """Traffic after the history window (what a deployed model will see); ``concept`` shifts the labels only."""
    return world.transactions(rows, world.end, world.end + timedelta(days=days), drift=drift, stream=stream, concept=concept)


def corrupt(df: pd.DataFrame, rate: float, seed: int, max_amount: float = 25_000.0,
            kind_list: tuple[str, ...] | list[str] = CORRUPTION_KINDS) -> tuple[pd.DataFrame, CorruptionManifest]:
    """Damage ``rate`` of the rows (one defect per row, kinds in turn) and report exactly what was done."""
    if rate <= 0:
        return df, CorruptionManifest(rows=0)
    rng = np.random.default_rng([seed, 99])
    out = df.copy()
    n_bad = int(round(rate * len(df)))
    rows = rng.choice(len(df), n_bad, replace=False)
    kinds = np.array(kind_list)[np.arange(n_bad) % len(kind_list)]
    counts: dict[str, int] = {}

    def bump(key: str, k: int) -> None:
        if k:
            counts[key] = counts.get(key, 0) + k

    out["merchant_category"] = out["merchant_category"].astype(object)
    out["channel"] = out["channel"].astype(object)
    for kind in kind_list:
        idx = rows[kinds == kind]
        if idx.size == 0:
            continue
        if kind == "null":
            cols = np.array(["amount", "merchant_category", "channel"])[np.arange(idx.size) % 3]
            for col in ("amount", "merchant_category", "channel"):
                sel = idx[cols == col]
                out.loc[out.index[sel], col] = None if col != "amount" else np.nan
                bump(f"null:{col}", sel.size)
        elif kind == "out_of_range":
            neg = idx[: idx.size // 2]
            huge = idx[idx.size // 2 :]
            out.loc[out.index[neg], "amount"] = -np.abs(out["amount"].to_numpy()[neg]) - 1.0
            out.loc[out.index[huge], "amount"] = max_amount * rng.uniform(2.0, 40.0, huge.size)
            bump("out_of_range:amount", idx.size)
        elif kind == "bad_category":
            half = idx.size // 2
            out.loc[out.index[idx[:half]], "merchant_category"] = rng.choice(["crypto_atm", "UNKNOWN", "Grocery "], half)
            out.loc[out.index[idx[half:]], "channel"] = rng.choice(["phone", "mail", ""], idx.size - half)
            bump("bad_category:merchant_category", half)
            bump("bad_category:channel", idx.size - half)
        elif kind == "future_timestamp":
            future = pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=400)
            out.loc[out.index[idx], "event_timestamp"] = future + pd.to_timedelta(rng.integers(0, 86_400, idx.size), unit="s")
            bump("future_timestamp:event_timestamp", idx.size)
    return out, CorruptionManifest(rows=n_bad, counts=counts, row_ids=out["transaction_id"].to_numpy()[rows].tolist())
