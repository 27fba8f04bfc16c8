"""The base class every workload implements, and what its methods return.

A workload is one ML problem on the platform: a built-in capstone
(``kindml pipeline list``) or a user's own (``kindml init``). The platform's stages call these
methods and do the rest themselves (Great Expectations runs and quarantine,
Feast apply / point-in-time retrieval / materialization, Ray Tune + Ray Train,
metrics and the gate, ONNX export and parity, registry and lineage, KServe
serving, drift metrics, alerts). Stage by stage:

==========  ==========================================  ===========================================
stage       the workload gives                          the platform does
==========  ==========================================  ===========================================
ingest      :meth:`Workload.generate` (seeded),         writes the tables, hashes them, records the
            :meth:`~Workload.schemas` (BYO files),      time window
            :meth:`~Workload.corrupt`
validate    :meth:`~Workload.suites` (GX expectations)  runs them, reports, quarantines bad event rows
features    :meth:`~Workload.feature_repo`              writes offline tables, ``feast apply``,
            (Feast objects + offline tables)            point-in-time join, materialize
train       :meth:`~Workload.model_kit`                 time split, Ray Tune, Ray Train DDP, MLflow
            (preprocessing + a torch recipe)
evaluate    ``task`` and ``gate_metric``                metric set of the task, gate vs floor and
            (optional :meth:`~Workload.baselines`)      champion on the same holdout
export      the kit's ONNX module                       ONNX export, parity, quantize chooser,
                                                        drift reference profile, request examples
batch       :meth:`~Workload.batch` (entity rows,           Ray Data ``map_batches`` with the served ONNX
            an optional Feast sink),                    model, parquet, write-back to Feast and
            :meth:`~Workload.batch_output`              materialization
serve       the kit's :class:`~kindml.serving.signature.Signature`  KServe ModelServer, Feast online
                                                        lookup, metrics, drift windows
monitor     :meth:`~Workload.traffic` (clean/drifted)   replays it, Prometheus scrapes and alerts
==========  ==========================================  ===========================================

Workload code is imported in every stage's process (KFP task, Ray worker,
predictor), so a workload module must be cheap to import: heavy imports go
inside methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kindml.errors import ConfigError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from kindml.config import KindmlConfig
    from kindml.model.kit import ModelKit

Task = Literal["binary", "multiclass", "ranking", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "ranking", "regression")
"""``ranking`` and ``regression`` workloads compute their holdout metrics themselves (:meth:`Workload.evaluate`)."""


class NoOptions(BaseModel):
    """A workload without options of its own (``workloads.<name>`` must stay empty)."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Window:
    """The time span of the history: ``[start, end)``, whole UTC days."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def days(self) -> int:
        return int((self.end - self.start).days)


@dataclass
class Ingested:
    """What :meth:`Workload.generate` returns: the raw tables and facts for ``ingest.json``."""

    tables: dict[str, pd.DataFrame]
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    """Great Expectations expectations for one table.

    Suites run in the order given; a failing suite stops validation. With
    ``quarantine`` (the event table), rows that fail row-level expectations
    can be set aside instead (``validation.quarantine``).
    """

    table: str
    expectations: list[Any]
    quarantine: bool = False


@dataclass
class FeatureRepo:
    """A workload's Feast definitions and the data behind them, for one data version.

    ``offline_tables`` are written by the platform to ``data_dir/<name>.parquet``;
    the ``FileSource`` objects in ``objects`` must point there. ``entity_rows``
    are the labelled events that get their features point-in-time: they need
    the views' join keys, ``event_timestamp`` and the workload's ``row_id``.
    """

    objects: list[Any]
    service: str
    views: list[str]
    offline_tables: dict[str, pd.DataFrame]
    entity_rows: pd.DataFrame


@dataclass
class FeatureSink:
    """Where batch predictions go in Feast: ``objects`` (the view, its FileSource reading
    ``data_dir/<table>.parquet``, optionally a feature service that serves it) are applied,
    the table is written there and ``view`` is materialized into the online store."""

    objects: list[Any]
    view: str
    table: str


@dataclass(frozen=True)
class Horizon:
    """How a batch output row's forecast maps to values observed later (delayed actuals, :mod:`kindml.monitoring.actuals`).

    A row of the batch output holds the entity ``keys``, the forecast ``origin`` (a timestamp) and in ``forecast``
    a list of H values: value ``k`` is for the period starting ``origin + k * step``. An actuals file holds the
    ``keys``, ``event_timestamp`` (the start of the period) and ``value`` (the observed number, the workload's
    label). ``nonnegative``: a negative actual is an error (demand, counts).
    """

    keys: tuple[str, ...]
    value: str
    forecast: str = "forecast"
    origin: str = "event_timestamp"
    step_seconds: int = 86_400
    nonnegative: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "value": self.value, "forecast": self.forecast, "origin": self.origin,
                "step_seconds": self.step_seconds, "nonnegative": self.nonnegative}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Horizon:
        return cls(keys=tuple(d["keys"]), value=str(d["value"]), forecast=str(d.get("forecast", "forecast")),
                   origin=str(d.get("origin", "event_timestamp")), step_seconds=int(d.get("step_seconds", 86_400)),
                   nonnegative=bool(d.get("nonnegative", True)))


@dataclass
class BatchSpec:
    """What the batch stage scores (:meth:`Workload.batch`).

    ``rows`` are entity rows (join keys, ``event_timestamp`` = the time the scores are for, a unique
    ``row_id`` column, and any extra column the kit's ``feeds`` need). With ``feature_service``
    their features are joined point-in-time from Feast first (as for training); then every batch of
    ``batch_size`` rows goes through the kit's ``feeds`` and the exported ONNX model, and
    :meth:`Workload.batch_output` turns it into rows of the output table (written to parquet,
    and to ``sink`` when given).
    """

    rows: pd.DataFrame
    row_id: str
    feature_service: str | None = None
    sink: FeatureSink | None = None
    batch_size: int = 1024
    what: str = "rows"
    """What one row is, for throughput figures ("users" → users/s)."""
    horizon: Horizon | None = None
    """For forecasts: how the output's forecast vectors meet the actuals that arrive later. The batch stage then keeps
    the champion's latest output in the workspace (``batch/<model>/v<version>/``) for ``kindml feedback actuals``."""


class Workload(ABC):
    """One ML problem on the platform. Subclass it in a workload folder; see the module docstring."""

    name: ClassVar[str]
    """Short identifier (``[a-z][a-z0-9_]*``): config section ``workloads.<name>``, run ids, experiment names."""
    title: ClassVar[str] = ""
    """One line for ``kindml pipeline list``."""
    teaches: ClassVar[str] = ""
    """What the capstone shows (README table)."""
    task: ClassVar[Task]
    model_name: ClassVar[str]
    """Default registered model name (also the InferenceService name on a cluster)."""
    event_table: ClassVar[str]
    """The table of labelled events: validated with quarantine, joined with features, split by time."""
    label: ClassVar[str]
    row_id: ClassVar[str]
    timestamp: ClassVar[str] = "event_timestamp"
    gate_metric: ClassVar[str]
    """The metric the gate compares (from the task's metric set): ``roc_auc``, ``macro_f1``, ..."""
    positive_label: ClassVar[str] = "positive"
    """Binary tasks: what a positive is called in reports (e.g. "churn", "failure")."""
    defaults: ClassVar[dict[str, Any]] = {}
    """Dotted config defaults of this workload (``{"train.epochs": 8}``), under file, env and flags."""
    corruption_kinds: ClassVar[tuple[str, ...]] = ()
    """Defects :meth:`corrupt` can inject (``data.corruption.kinds``)."""
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The pydantic model of ``workloads.<name>`` (``extra="forbid"``)."""

    def __init__(self, cfg: KindmlConfig) -> None:
        self.cfg = cfg
        self.options = self.parse_options(cfg.workloads.get(self.name, {}))
        kinds = cfg.data.corruption.kinds
        if kinds is not None:
            unknown = [k for k in kinds if k not in self.corruption_kinds]
            if unknown:
                raise ConfigError(f"data.corruption.kinds: {', '.join(unknown)} not offered by workload {self.name!r}",
                                  f"Use some of: {', '.join(self.corruption_kinds) or '(none: this workload injects no defects)'}.")

    # --- identity and config -------------------------------------------------------------

    @classmethod
    def parse_options(cls, raw: Any) -> BaseModel:
        try:
            return cls.Options.model_validate(raw or {})
        except ValidationError as exc:
            lines = [f"workloads.{cls.name}.{'.'.join(str(p) for p in e['loc'])}: "
                     + ("unknown field" if e["type"] == "extra_forbidden" else e["msg"]) for e in exc.errors()]
            fields = ", ".join(cls.Options.model_fields) or "(none)"
            raise ConfigError("invalid workload options:\n  " + "\n  ".join(lines),
                              f"Options of workload {cls.name!r}: {fields}. Fix them in kindml.yaml or the --set flag.") from None

    @classmethod
    def config_defaults(cls) -> dict[str, Any]:
        """Everything this workload sets under the user's config: its ``defaults`` plus model and experiment names."""
        return {"registry.model_name": cls.model_name, "registry.experiment": f"kindml-{cls.name}", **cls.defaults}

    @property
    def kinds(self) -> list[str]:
        return list(self.cfg.data.corruption.kinds or self.corruption_kinds)

    # --- data ------------------------------------------------------------------------------

    @abstractmethod
    def schemas(self) -> dict[str, dict[str, str]]:
        """Table → {column: dtype} of the raw data (``string``, ``int64``, ``float64``, ``datetime64[ns, UTC]``).

        Used to read bring-your-own files (``data.source: file``) and by ``kindml data schema``.
        """

    def allowed_values(self) -> dict[str, list[Any]]:
        """Column → allowed values, for ``kindml data schema`` (documentation only)."""
        return {}

    @abstractmethod
    def generate(self) -> Ingested:
        """Seeded synthetic history from ``self.cfg.data`` (rows, days, seed, end_date, history_drift)."""

    def load(self, folder: Path) -> dict[str, pd.DataFrame]:
        """Bring-your-own tables from ``folder`` (parquet or CSV per table), coerced to :meth:`schemas`."""
        from kindml.data.load import load_tables

        return load_tables(folder, self.schemas())

    def check_loaded(self, tables: dict[str, pd.DataFrame]) -> None:
        """Table-level sanity of loaded files that must fail before validation (e.g. duplicate keys). Raise DataError."""
        return None

    def corrupt(self, tables: dict[str, pd.DataFrame], rate: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        """Damage ``rate`` of the event rows with :attr:`kinds`; return the tables and exactly what was done."""
        if rate > 0:
            raise UsageError(f"workload {self.name!r} cannot inject defects (data.corruption.rate={rate})",
                             "Set data.corruption.rate to 0 for this workload.")
        return tables, {"rows": 0}

    def data_summary(self, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
        """Extra facts for ``summary.json``'s ``data`` (e.g. entity counts, the positive rate)."""
        return {}

    # --- validation ----------------------------------------------------------------------------

    @abstractmethod
    def suites(self, tables: dict[str, pd.DataFrame], now: Any) -> list[Suite]:
        """Great Expectations suites, reference tables first, the event table (``quarantine=True``) last."""

    # --- features ----------------------------------------------------------------------------

    @abstractmethod
    def feature_repo(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> FeatureRepo:
        """Feast objects whose FileSources point into ``data_dir``, the offline tables, and the event rows to join."""

    # --- model ----------------------------------------------------------------------------------

    @abstractmethod
    def model_kit(self) -> ModelKit:
        """A fresh (unfitted) model kit: preprocessing, training recipe, ONNX module, serving signature."""

    def reference_rows(self, frame: pd.DataFrame, window: Window) -> pd.DataFrame:
        """Train + validation rows that represent live traffic (the drift reference). Default: all of them."""
        return frame

    def evaluate(self, kit: ModelKit, predict: Any, holdout: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any] | None:
        """Optional: the holdout metrics computed by the workload (a ranking or forecasting task scores whole
        lists or series, not rows). ``predict(frame)`` runs the model on rows shaped like the training set
        (the candidate's torch model through ``kit.predict``, or a registered champion's ONNX model through
        ``kit.feeds`` → ONNX Runtime → ``kit.probabilities``: the same call for both, so the gate compares them
        on the same holdout); what it returns is the kit's business (probabilities, top-K lists, forecasts).
        ``history`` holds the training and validation rows (everything before the holdout, oldest first): what
        a user already has, or a series' past. Return ``{<metric>: value, ...}`` including the gate metric (a
        ``baselines`` entry, name → metrics, joins the evaluation report's baselines), or None (the default)
        for the task's per-row metric set (:mod:`kindml.model.metrics`)."""
        return None

    def baselines(self, train: pd.DataFrame, holdout: pd.DataFrame, kit: ModelKit) -> dict[str, dict[str, Any]]:
        """Optional simpler models fitted on the training split and scored on the same holdout (evaluation
        report): name → metrics of the task's set (plus a ``note``). ``kit`` is fitted on ``train``."""
        return {}

    # --- batch inference ----------------------------------------------------------------------

    def batch(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> BatchSpec | None:
        """Optional: what the batch stage scores with the served model (e.g. every user, every series), from the
        validated tables; ``data_dir`` is the data version's Feast folder (a :class:`FeatureSink`'s table goes
        there). None (the default): this workload has no batch inference."""
        return None

    def batch_output(self, kit: ModelKit, rows: pd.DataFrame, outputs: list[Any]) -> pd.DataFrame:
        """One scored batch → rows of the output table (for a Feast sink: its join keys, ``event_timestamp`` and
        the view's features). ``outputs`` are the ONNX model's outputs for ``kit.feeds`` of ``rows``. Runs in
        Ray Data workers: keep it a pure function of its arguments. Default: the rows' ``row_id`` and the first
        output as ``score`` (first column of a matrix)."""
        import numpy as np
        import pandas as pd

        first = np.asarray(outputs[0])
        score = first.reshape(len(rows), -1)[:, 0] if first.ndim > 1 else first.reshape(-1)
        spec_id = self.row_id if self.row_id in rows.columns else rows.columns[0]
        return pd.DataFrame({spec_id: rows[spec_id].to_numpy(), "score": score})

    # --- live traffic --------------------------------------------------------------------------

    def live(self, n: int, drift: float, stream: int, concept: float = 0.0) -> pd.DataFrame:
        """``n`` labelled events after the history window (the event table's columns); optional.

        ``drift`` moves the inputs; ``concept`` (0..1) changes the label relationship while the inputs do not (the
        same ``stream`` draws the same inputs for every ``concept``). ``kindml data generate --live`` writes them; the
        monitor stage replays them and sends their labels later as delayed feedback; :meth:`traffic` usually turns
        them into requests.
        """
        raise UsageError(f"workload {self.name!r} has no generator of live events", "Generate the history instead (without --live).")

    def actuals(self, shift: float = 0.0) -> pd.DataFrame:
        """Generated actuals of what the batch stage forecast (optional; needs :attr:`BatchSpec.horizon`).

        The :class:`Horizon`'s key columns, ``event_timestamp`` and its value column, for the periods after the
        history window. ``shift`` (0..1) changes the values while the inputs do not (the realised error rises); the
        monitor stage ingests them with ``data.concept_shift``; ``kindml data generate --actuals`` writes them.
        """
        raise UsageError(f"workload {self.name!r} has no generator of actuals", "Only forecasting workloads (BatchSpec.horizon) have one.")

    def requests(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """v1 request instances for rows of live events (what a client would send for them; no labels)."""
        raise UsageError(
            f"workload {self.name!r} cannot turn events into requests",
            "Implement Workload.requests (or traffic).",
        )

    def traffic(self, n: int, drift: float, stream: int) -> list[dict[str, Any]]:
        """``n`` v1 request instances after the history window; ``drift`` 0 is the training distribution."""
        return self.requests(self.live(n, drift, stream))
