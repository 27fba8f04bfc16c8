"""A seeded generator of customer-support tickets over 8 intents, with controllable drift and defects.

The world: customers (the Feast entity ``customer_id``) with a plan (free / pro /
enterprise), a country, an account age, and a hidden intent propensity that
depends on the plan and on their own recent tickets (a delivery question is
often followed by a refund request). A ticket is short free text written from
per-intent templates with slot fillers, greetings, sign-offs, lower-casing,
missing punctuation and typos; a share of tickets is *generic* ("I need help
with my account") and only the customer's history says which intent it is.
The label is the intent the ticket was generated from.

Drift (``severity`` 0..3) for live traffic:

- **new vocabulary**: key words replaced by synonyms never used in the history
  ("reimbursement", "parcel", "sign on"), plus slang and emoji;
- **a new topic**: tickets about pairing a smart-home device (labelled
  ``bug_report``), a topic absent from the history;
- **label-mix shift**: more cancellations and refund requests.

Defects (``corrupt``): empty or whitespace-only text, text beyond the length
limit, non-text rows (digits and symbols only), unknown intent labels,
duplicated tickets (same customer and text under a new id) — with an exact
manifest of what was damaged. Everything is a pure function of the seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

INTENTS: tuple[str, ...] = ("billing_question", "refund_request", "login_problem", "delivery_status",
                            "cancel_subscription", "bug_report", "change_address", "feature_request")
PLANS: tuple[str, ...] = ("free", "pro", "enterprise")
CHANNELS: tuple[str, ...] = ("email", "chat", "web")
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "NL", "CA", "IN")
MAX_TEXT_CHARS = 2_000
CORRUPTION_KINDS: tuple[str, ...] = ("empty", "too_long", "non_text", "unknown_label", "duplicate")

# how each plan's customers tend to write in (a prior over INTENTS)
_PLAN_PRIOR = np.array([
    [0.22, 0.08, 0.20, 0.08, 0.20, 0.08, 0.06, 0.08],   # free
    [0.12, 0.16, 0.08, 0.22, 0.08, 0.12, 0.14, 0.08],   # pro
    [0.16, 0.06, 0.08, 0.06, 0.04, 0.26, 0.06, 0.28],   # enterprise
])
# after a ticket of intent i, the next one leans toward j (weights added to the prior)
_FOLLOW_UP = {"delivery_status": {"refund_request": 0.35, "delivery_status": 0.15}, "billing_question": {"refund_request": 0.15,
              "cancel_subscription": 0.15}, "login_problem": {"login_problem": 0.25, "bug_report": 0.1}, "bug_report": {"bug_report": 0.2,
              "feature_request": 0.1}, "refund_request": {"cancel_subscription": 0.2}}
# concept shift: the same texts now mean another intent
_CONCEPT = {"refund_request": "cancel_subscription", "billing_question": "refund_request", "delivery_status": "change_address",
            "login_problem": "bug_report"}
_DRIFT_MIX = np.array([0.04, 0.30, 0.03, 0.08, 0.40, 0.06, 0.03, 0.06])
GENERIC_SHARE = 0.08

_SLOTS: dict[str, list[str]] = {
    "item": ["order", "package", "subscription", "headphones", "laptop bag", "coffee machine", "annual plan", "gift box", "monitor"],
    "when": ["yesterday", "last week", "this morning", "two days ago", "on Monday", "since the update", "a month ago"],
    "amount": ["$19.99", "$49", "€12.50", "$120", "£30", "$7.99"],
    "device": ["iPhone", "Android phone", "Windows laptop", "Mac", "tablet", "browser"],
    "feature": ["dark mode", "an export to CSV", "two-factor login by SMS", "bulk editing", "a calendar view", "shared team folders",
                "keyboard shortcuts", "an API for reports"],
    "screen": ["settings page", "checkout", "dashboard", "search results", "profile page", "upload dialog"],
    "carrier": ["the courier", "UPS", "DHL", "the post office", "the delivery driver"],
    "city": ["Berlin", "Leeds", "Austin", "Lyon", "Utrecht", "Pune", "Toronto", "Seville"],
}
_TEMPLATES: dict[str, list[str]] = {
    "billing_question": [
        "Why was I charged {amount} twice {when}?", "Can you explain the extra fee of {amount} on my invoice?",
        "My bill this month is higher than usual, what is the {amount} charge for?", "I was billed for my {item} but I thought it was free.",
        "Which card do you charge for the {item}? I see a payment of {amount}.", "Please send me a copy of my latest invoice.",
        "The invoice shows a tax line I do not understand.", "How is the price of the {item} calculated on my statement?",
    ],
    "refund_request": [
        "I would like a refund for my {item}.", "Please refund the {amount} you charged me {when}.",
        "The {item} arrived broken, I want my money back.", "I returned the {item} {when} and still have no refund.",
        "Can I get a refund? I never used the {item}.", "Refund the duplicate payment of {amount} please.",
        "How long does a refund take? I sent the {item} back {when}.",
    ],
    "login_problem": [
        "I can't log into my account on my {device}.", "The password reset link never arrives.",
        "My account is locked after too many login attempts.", "Login fails with an error on the {device} since {when}.",
        "I forgot my password and the reset email is not working.", "Two-factor code is rejected every time I try to log in.",
        "It keeps saying invalid credentials although my password is right.",
    ],
    "delivery_status": [
        "Where is my {item}? It was supposed to arrive {when}.", "My package hasn't been delivered yet.",
        "Tracking for my {item} has not updated since {when}.", "{carrier} says delivered but I have no package.",
        "When will my order ship? I ordered {when}.", "The delivery of my {item} is late, any update?",
        "Can you check the shipping status of my order to {city}?",
    ],
    "cancel_subscription": [
        "Please cancel my subscription.", "I want to cancel my {item} before the next renewal.",
        "How do I stop the automatic renewal of my plan?", "Cancel my account and do not charge me again.",
        "I no longer need the service, please end my membership.", "Unsubscribe me from the paid plan starting {when}.",
    ],
    "bug_report": [
        "The app crashes when I open the {screen} on my {device}.", "There is a bug on the {screen}: nothing happens when I click save.",
        "The {screen} shows a blank screen since {when}.", "Uploading a file fails with error 500.",
        "The numbers on the {screen} are wrong after the update.", "The app freezes on my {device} whenever I search.",
        "I get a timeout error on the {screen} every time.",
    ],
    "change_address": [
        "I moved to {city}, please update my shipping address.", "Can I change the delivery address for my {item}?",
        "Please update my billing address to my new home in {city}.", "My address has a typo, how do I correct it?",
        "Ship my next {item} to my office in {city} instead.", "I need to change the postcode on my account.",
    ],
    "feature_request": [
        "It would be great if you added {feature}.", "Do you plan to support {feature}?", "Please add {feature} to the app.",
        "Our team really needs {feature}.", "Feature idea: {feature} on the {screen}.", "Any chance of getting {feature} soon?",
    ],
}
_GENERIC = ["I need some help with my account, please get back to me.", "Hi, I have a problem, can someone contact me?",
            "Something is wrong, please help.", "Question about my account.", "Can you call me back about my issue?",
            "Hello, I wrote before and nobody answered."]
_GREETINGS = ["", "", "Hi, ", "Hello, ", "Hi team, ", "Good morning, ", "Hey, "]
_CLOSINGS = ["", "", "", " Thanks.", " Thank you!", " Regards.", " Cheers", " Please help asap."]
# drift: synonyms never used in the history, slang, emoji, and a new topic
_NEW_WORDS = {"refund": "reimbursement", "money back": "cash returned", "package": "parcel", "order": "consignment",
              "log into": "sign on to", "log in": "sign on", "password": "passcode", "cancel": "terminate", "subscription": "membership tier",
              "invoice": "statement of account", "crashes": "bricks", "bug": "glitch", "address": "residence details", "delivered": "dropped off"}
_SLANG = [" pls", " asap!!", " 😡", " 🙏", " lol", " smh", " 🤷", " fr"]
_NEW_TOPIC = ["My smart speaker won't pair with the hub after the firmware update.", "The thermostat app cannot find my smart plug.",
              "Pairing the doorbell camera fails at 90 percent every time.", "My smart bulb keeps dropping off the home network."]


def _typo(rng: np.random.Generator, s: str) -> str:
    if len(s) < 8:
        return s
    i = int(rng.integers(1, len(s) - 2))
    return s[:i] + s[i + 1] + s[i] + s[i + 2:]


def write_ticket(rng: np.random.Generator, intent: str, drift: float = 0.0) -> str:
    templates = _TEMPLATES[intent]
    n_sent = 1 + int(rng.random() < 0.35)
    parts = []
    for _ in range(n_sent):
        t = templates[int(rng.integers(len(templates)))]
        parts.append(t.format(**{k: v[int(rng.integers(len(v)))] for k, v in _SLOTS.items()}))
    text = _GREETINGS[int(rng.integers(len(_GREETINGS)))] + " ".join(parts) + _CLOSINGS[int(rng.integers(len(_CLOSINGS)))]
    if drift > 0 and rng.random() < min(1.0, 0.6 * drift):
        for old, new in _NEW_WORDS.items():
            text = re.sub(rf"\b{re.escape(old)}\b", new, text)
        if rng.random() < min(1.0, 0.3 * drift):
            text += _SLANG[int(rng.integers(len(_SLANG)))]
    r = rng.random()
    if r < 0.25:
        text = text.lower()
    elif r < 0.35:
        text = text.rstrip(".!?")
    if rng.random() < 0.15:
        text = _typo(rng, text)
    return text.strip()


@dataclass
class TicketWorld:
    """The hidden state of the generated world; tickets are drawn from it."""

    seed: int
    n_customers: int
    end: datetime
    days: int
    customers: pd.DataFrame = field(init=False)
    _plan: np.ndarray = field(init=False, repr=False)
    _activity: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 11])
        n = self.n_customers
        start = self.end - timedelta(days=self.days)
        age = np.where(rng.random(n) < 0.12, -rng.uniform(0, self.days * 0.8, n), rng.gamma(2.0, 300.0, n) + 1.0)
        plan = rng.choice(len(PLANS), n, p=[0.55, 0.33, 0.12])
        self._plan = plan
        self._activity = rng.lognormal(0.0, 0.8, n) * np.array([1.0, 1.3, 2.2])[plan]
        self.customers = pd.DataFrame({
            "customer_id": np.arange(5_001, 5_001 + n, dtype=np.int64),
            "created_at": (pd.to_datetime(start, utc=True) - pd.to_timedelta(age, unit="D")).floor("s"),
            "plan": np.array(PLANS, dtype=object)[plan],
            "country": np.array(COUNTRIES, dtype=object)[rng.choice(len(COUNTRIES), n)],
        })

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    def tickets(self, n: int, start: datetime, end: datetime, drift: float = 0.0, stream: int = 0, concept: float = 0.0) -> pd.DataFrame:
        """``n`` tickets in ``[start, end)``, each customer's intents following its plan and its own previous ticket.

        ``concept`` (0..1) changes what the same texts *mean*, not the texts: after a policy change a share of refund,
        billing and delivery tickets are handled (labelled) as cancellations, refunds and address changes.
        """
        rng = np.random.default_rng([self.seed, 12, stream])
        relabel = np.random.default_rng([self.seed, 13, stream]).random(n) < float(np.clip(concept, 0.0, 1.0))  # its own stream
        created = self.customers["created_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        t0, t1 = pd.Timestamp(start).value, pd.Timestamp(end).value
        open_from = np.maximum(created, t0)
        w = self._activity * (open_from < t1)
        cust = rng.choice(self.n_customers, n, p=w / w.sum())
        ts = open_from[cust] + (rng.random(n) * (t1 - open_from[cust])).astype(np.int64)
        order = np.lexsort((ts, cust))  # each customer's tickets in time order: history drives the next intent
        cust, ts = cust[order], ts[order]
        intents = np.empty(n, dtype=object)
        texts = np.empty(n, dtype=object)
        prev: dict[int, str] = {}
        seen: set[tuple[int, str]] = set()
        for i in range(n):
            c = int(cust[i])
            p = _PLAN_PRIOR[self._plan[c]].copy()
            for j, bump in _FOLLOW_UP.get(prev.get(c, ""), {}).items():
                p[INTENTS.index(j)] += bump
            if drift > 0:
                p = (1 - min(1.0, 0.6 * drift)) * p / p.sum() + min(1.0, 0.6 * drift) * _DRIFT_MIX
            intent = INTENTS[int(rng.choice(len(INTENTS), p=p / p.sum()))]
            new_topic = drift > 0 and rng.random() < min(0.5, 0.2 * drift)
            generic = not new_topic and rng.random() < GENERIC_SHARE
            if new_topic:
                intent = "bug_report"
            for attempt in range(8):  # a customer does not send the very same text twice (validation checks it)
                if new_topic:
                    text = _NEW_TOPIC[int(rng.integers(len(_NEW_TOPIC)))]
                elif generic:
                    text = _GREETINGS[int(rng.integers(len(_GREETINGS)))] + _GENERIC[int(rng.integers(len(_GENERIC)))]
                else:
                    text = write_ticket(rng, intent, drift)
                if (c, text) not in seen:
                    break
                if attempt == 7:
                    text = f"{text} (ref {int(rng.integers(10_000, 99_999))})"
            seen.add((c, text))
            intents[i], texts[i] = _CONCEPT.get(intent, intent) if relabel[i] else intent, text
            prev[c] = intent
        df = pd.DataFrame({
            "customer_id": self.customers["customer_id"].to_numpy()[cust],
            "channel": np.array(CHANNELS, dtype=object)[rng.choice(len(CHANNELS), n, p=[0.4, 0.45, 0.15])],
            "text": texts,
            "intent": intents,
            "event_timestamp": pd.to_datetime(ts, utc=True).floor("s"),
        }).sort_values("event_timestamp", kind="stable").reset_index(drop=True)
        df.insert(0, "ticket_id", [f"k{stream}-{i:08d}" for i in range(n)])
        return df


def end_of_history(end_date: date | None) -> datetime:
    """Midnight UTC after ``end_date`` (default: yesterday, the last complete UTC day)."""
    d = end_date or (datetime.now(UTC).date() - timedelta(days=1))
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)


def build_world(seed: int, customers: int, days: int, end_date: date | None) -> TicketWorld:
    return TicketWorld(seed=seed, n_customers=customers, end=end_of_history(end_date), days=days)


def generate_history(world: TicketWorld, rows: int, drift: float = 0.0) -> pd.DataFrame:
    return world.tickets(rows, world.start, world.end, drift=drift, stream=0 if drift == 0 else 5)


def generate_live(world: TicketWorld, rows: int, drift: float, days: int = 1, stream: int = 1, concept: float = 0.0) -> pd.DataFrame:
    return world.tickets(rows, world.end, world.end + timedelta(days=days), drift=drift, stream=stream, concept=concept)


def corrupt(df: pd.DataFrame, rate: float, seed: int, kinds: tuple[str, ...] | list[str] = CORRUPTION_KINDS) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Damage ``rate`` of the rows (one defect per row, kinds in turn); report exactly what was done.

    ``duplicate`` appends a copy of a ticket (same customer and text, a new id) instead of changing one: validation
    sets aside every copy of a duplicated (customer, text) pair, so both the copy and its original are reported.
    """
    if rate <= 0:
        return df, {"rows": 0, "counts": {}}
    rng = np.random.default_rng([seed, 98])
    out = df.copy()
    n_bad = int(round(rate * len(df)))
    rows = rng.choice(len(df), n_bad, replace=False)
    kind_of = np.array(kinds)[np.arange(n_bad) % len(kinds)]
    counts: dict[str, int] = {}
    extra = []
    for kind in kinds:
        idx = rows[kind_of == kind]
        if idx.size == 0:
            continue
        counts[kind] = int(idx.size)
        loc = out.index[idx]
        if kind == "empty":
            out.loc[loc, "text"] = np.where(np.arange(idx.size) % 2 == 0, "", "   ")
        elif kind == "too_long":
            out.loc[loc, "text"] = [(t + " ") * (MAX_TEXT_CHARS // max(len(t), 1) + 2) for t in out.loc[loc, "text"]]
        elif kind == "non_text":
            out.loc[loc, "text"] = [f"{int(v)} ### {int(v) % 97} // {int(v) * 7} !!" for v in rng.integers(10_000, 99_999, idx.size)]
        elif kind == "unknown_label":
            out.loc[loc, "intent"] = rng.choice(["other", "URGENT", "billing question"], idx.size)
        elif kind == "duplicate":
            copies = out.loc[loc].copy()
            copies["ticket_id"] = [f"dup-{i:08d}" for i in range(idx.size)]
            extra.append(copies)
    if extra:
        out = pd.concat([out, *extra]).sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    return out, {"rows": n_bad, "counts": counts}
