"""A workload base class for tabular events, so a workload of your own is a few declarations and a data generator.

Declare the columns of your event table and the entity whose history feeds the
model; :class:`TabularWorkload` derives the rest from the declarations:

- the raw schema (bring-your-own files) and a Great Expectations suite (columns,
  nulls, ranges, category sets, label values, unique ids, known entities, no
  future timestamps, freshness);
- a Feast repo: the entity, a daily snapshot view of trailing 7-day aggregates
  per entity (mean of each ``aggregate`` column and the event count, stamped at
  midnight after the day, so the point-in-time join never leaks), and a feature
  service;
- a model kit: numeric and one-hot inputs (fill values and standardisation from
  the training split), the platform's MLP recipe, ONNX export;
- a serving signature from the same declarations (typed fields, ranges, allowed
  values, the entity looked up in Feast, drift columns);
- live traffic from your generator's :meth:`TabularWorkload.live`.

You write :meth:`~kindml.workload.contract.Workload.generate` (and ``live`` for
monitoring traffic). ``kindml init NAME`` writes a complete example.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from kindml.model.kit import ModelKit, OnnxSpec, frame_columns
from kindml.model.mlp import MLPRecipe, probability_module
from kindml.serving.signature import (
    Answer,
    Parsed,
    RequestError,
    Signature,
    check_instances,
    choice,
    integer,
    number,
)
from kindml.workload.contract import FeatureRepo, Suite, Window, Workload

if TYPE_CHECKING:
    from kindml.explain.spec import ExplainSpec

DAY_NS = 86_400 * 10**9
SNAPSHOT_TTL = timedelta(days=2)
PREPROCESSING = "tabular_preprocessing.json"


def daily_snapshots(events: pd.DataFrame, entity: str, entities: np.ndarray, columns: tuple[str, ...], start: pd.Timestamp, days: int,
                    window: int = 7) -> pd.DataFrame:
    """Per (entity, day): the trailing ``window``-day event count and mean of ``columns``, stamped at midnight after the day."""
    pos = pd.Series(np.arange(len(entities)), index=entities)
    ev = events[events[entity].isin(pos.index)]
    e = pos.loc[ev[entity].to_numpy()].to_numpy()
    d = ((ev["event_timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64) - start.value) // DAY_NS).astype(np.int64)
    keep = (d >= 0) & (d < days)
    e, d, ev = e[keep], d[keep], ev.loc[keep]

    def trailing(values: np.ndarray | None) -> np.ndarray:
        g = np.zeros((len(entities), days))
        np.add.at(g, (e, d), 1.0 if values is None else values)
        c = np.cumsum(g, axis=1)
        out = c.copy()
        out[:, window:] -= c[:, :-window]
        return out

    count = trailing(None)
    snap = start.value + (np.arange(days) + 1) * DAY_NS
    ii, dd = np.nonzero(np.ones((len(entities), days), dtype=bool))
    out = {entity: np.asarray(entities)[ii].astype(np.int64), "event_timestamp": pd.to_datetime(snap[dd], utc=True),
           f"events_{window}d": count[ii, dd]}
    for col in columns:
        s = trailing(ev[col].to_numpy(dtype=np.float64))
        out[f"{col}_mean_{window}d"] = np.where(count[ii, dd] > 0, s[ii, dd] / np.maximum(count[ii, dd], 1.0), np.nan)
    return pd.DataFrame(out)


class TabularWorkload(Workload):
    """Subclass it, declare the columns, write ``generate`` (and ``live``)."""

    entity: ClassVar[str]
    """The Feast entity's join key (an int64 column of the event table), e.g. ``device_id``."""
    numeric: ClassVar[dict[str, tuple[float, float]]] = {}
    """Numeric request columns and their valid range: ``{"temperature": (-50, 150)}``."""
    categorical: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Categorical request columns and their allowed values."""
    classes: ClassVar[tuple[Any, ...]] = (0, 1)
    """Label values; binary tasks use (0, 1)."""
    aggregate: ClassVar[tuple[str, ...]] = ()
    """Numeric columns whose trailing 7-day mean per entity becomes a Feast feature (plus the event count)."""
    window_days: ClassVar[int] = 7

    # --- declarations → names ---------------------------------------------------------------------------

    @property
    def view(self) -> str:
        return f"{self.name}_{self.entity}_daily"

    @property
    def service(self) -> str:
        return f"{self.name}_model_v1"

    @property
    def feature_names(self) -> list[str]:
        return [f"events_{self.window_days}d", *(f"{c}_mean_{self.window_days}d" for c in self.aggregate)]

    def schemas(self) -> dict[str, dict[str, str]]:
        label_type = "int64" if all(isinstance(c, int) for c in self.classes) else "string"
        cols = {self.row_id: "string", self.entity: "int64", **{c: "float64" for c in self.numeric},
                **{c: "string" for c in self.categorical}, self.timestamp: "datetime64[ns, UTC]", self.label: label_type}
        return {self.event_table: cols}

    def allowed_values(self) -> dict[str, list[Any]]:
        return {**{c: list(v) for c, v in self.categorical.items()}, self.label: list(self.classes)}

    # --- validation --------------------------------------------------------------------------------------------

    def suites(self, tables: dict[str, pd.DataFrame], now: Any) -> list[Suite]:
        import great_expectations as gx

        E = gx.expectations
        cols = self.schemas()[self.event_table]
        exps: list[Any] = [E.ExpectTableColumnsToMatchSet(column_set=list(cols), exact_match=True), E.ExpectTableRowCountToBeBetween(min_value=100)]
        exps += [E.ExpectColumnValuesToNotBeNull(column=c) for c in cols]
        exps += [E.ExpectColumnValuesToBeUnique(column=self.row_id)]
        exps += [E.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi) for c, (lo, hi) in self.numeric.items()]
        exps += [E.ExpectColumnValuesToBeInSet(column=c, value_set=list(v)) for c, v in self.categorical.items()]
        exps += [E.ExpectColumnValuesToBeInSet(column=self.label, value_set=list(self.classes)),
                 E.ExpectColumnValuesToBeBetween(column=self.entity, min_value=0),
                 E.ExpectColumnValuesToBeBetween(column=self.timestamp, max_value=now + timedelta(hours=1))]
        if self.cfg.validation.freshness_days is not None:
            exps.append(E.ExpectColumnMaxToBeBetween(column=self.timestamp, min_value=now - timedelta(days=self.cfg.validation.freshness_days)))
        return [Suite(self.event_table, exps, quarantine=True)]

    # --- features ----------------------------------------------------------------------------------------------

    def feature_repo(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> FeatureRepo:
        from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
        from feast.types import Float64

        events = tables[self.event_table]
        snapshots = daily_snapshots(events, self.entity, np.unique(events[self.entity].to_numpy(np.int64)), self.aggregate,
                                    window.start, window.days, self.window_days)
        entity = Entity(name=f"{self.name}_{self.entity}", join_keys=[self.entity], value_type=ValueType.INT64)
        source = FileSource(name=f"{self.view}_source", path=str(data_dir / f"{self.view}.parquet"), timestamp_field="event_timestamp")
        view = FeatureView(name=self.view, entities=[entity], ttl=SNAPSHOT_TTL, schema=[Field(name=f, dtype=Float64) for f in self.feature_names],
                           source=source, online=True, tags={"owner": self.name})
        service = FeatureService(name=self.service, features=[view])
        return FeatureRepo([entity, source, view, service], self.service, [self.view], {self.view: snapshots}, events)

    # --- model ----------------------------------------------------------------------------------------------------

    def model_kit(self) -> ModelKit:
        return TabularKit(self)

    # --- traffic ---------------------------------------------------------------------------------------------------

    def requests(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        return TabularSignature(self, None).instances(frame)


class TabularKit(ModelKit):
    """Numeric inputs (request columns + Feast features, NaN → training median) and one-hot categoricals → the MLP."""

    files = (PREPROCESSING,)

    def __init__(self, wl: TabularWorkload) -> None:
        self.wl = wl
        self.recipe = MLPRecipe(wl.task)
        self.state: dict[str, Any] | None = None

    @property
    def numeric_inputs(self) -> list[str]:
        return [*self.wl.numeric, *self.wl.feature_names]

    @property
    def class_names(self) -> list[str] | None:
        return [str(c) for c in self.wl.classes] if self.wl.task == "multiclass" else None

    def fit(self, train: pd.DataFrame) -> None:
        fill = {}
        for c in self.numeric_inputs:
            v = pd.to_numeric(train[c], errors="coerce") if c in train else pd.Series(dtype=float)
            fill[c] = float(v.median()) if v.notna().any() else 0.0
        self.state = {"fill": fill, "categories": {c: list(v) for c, v in self.wl.categorical.items()}, "mean": [], "std": [],
                      "classes": [str(c) for c in self.wl.classes]}
        x = self.matrix(frame_columns(train))
        std = x.std(axis=0)
        self.state["mean"] = [float(m) for m in x.mean(axis=0)]
        self.state["std"] = [float(s) if s > 1e-6 else 1.0 for s in std]

    def matrix(self, cols: Mapping[str, Any]) -> np.ndarray:
        assert self.state is not None
        n = len(next(iter(cols.values())))
        out = []
        for c in self.numeric_inputs:
            raw = cols.get(c)
            v = np.full(n, np.nan) if raw is None else np.array([np.nan if x is None else x for x in np.asarray(raw, dtype=object)], dtype=np.float64)
            out.append(np.where(np.isfinite(v), v, self.state["fill"][c]))
        known = cols.get(f"events_{self.wl.window_days}d")
        known_flag = np.isfinite(np.array([np.nan if x is None else x for x in np.asarray(known, dtype=object)], dtype=np.float64)) \
            if known is not None else np.zeros(n, dtype=bool)
        out.append(known_flag.astype(np.float64))
        for c, cats in self.state["categories"].items():
            values = np.asarray(cols.get(c, np.full(n, None)), dtype=object)
            out += [(values == cat).astype(np.float64) for cat in cats]
        return np.column_stack(out).astype(np.float32)

    def save(self, folder: Path) -> None:
        (folder / PREPROCESSING).write_text(json.dumps(self.state, indent=1), encoding="utf-8")

    def load(self, folder: Path) -> TabularKit:
        folder = Path(folder)
        path = folder / PREPROCESSING if (folder / PREPROCESSING).is_file() else next(iter(sorted(folder.rglob(PREPROCESSING))), None)
        if path is None:
            raise FileNotFoundError(f"{PREPROCESSING} not found under {folder}")
        self.state = json.loads(path.read_text(encoding="utf-8"))
        return self

    def meta(self) -> dict[str, Any]:
        assert self.state is not None
        return {"n_inputs": len(self.state["mean"]), "mean": self.state["mean"], "std": self.state["std"], "n_classes": len(self.state["classes"])}

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"features": self.matrix(frame_columns(frame))}

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        if self.wl.task == "binary":
            return frame[self.wl.label].to_numpy().astype(np.int64)
        index = {str(c): i for i, c in enumerate(self.wl.classes)}
        return np.array([index[str(v)] for v in frame[self.wl.label]], dtype=np.int64)

    def onnx_module(self, model: Any) -> OnnxSpec:
        n = len(self.state["mean"]) if self.state else 0
        return OnnxSpec(probability_module(model, self.recipe.probability), {"features": np.zeros((2, n), dtype=np.float32)}, ["features"],
                        ["probability" if self.wl.task == "binary" else "probabilities"])

    def feeds(self, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {"features": self.matrix(cols)}

    def signature(self) -> Signature:
        return TabularSignature(self.wl, self)

    def explanation(self) -> ExplainSpec:
        """Every request column and looked-up feature is a player (the entity's "known" flag follows its features)."""
        from kindml.explain.spec import ExplainSpec

        return ExplainSpec(columns=[*self.wl.numeric, *self.wl.categorical, *self.wl.feature_names])


class TabularSignature(Signature):
    """Requests with the entity id, the declared numeric and categorical columns (``event_timestamp`` optional)."""

    def __init__(self, wl: TabularWorkload, kit: TabularKit | None) -> None:
        self.wl = wl
        self.kit = kit
        self.entity_keys = (wl.entity,)
        self.threshold = wl.cfg.evaluate.threshold

    @property
    def fields(self) -> dict[str, str]:
        return {self.wl.entity: "INT64", **{c: "FP64" for c in self.wl.numeric}, **{c: "BYTES" for c in self.wl.categorical},
                "event_timestamp": "BYTES", self.wl.row_id: "BYTES"}

    @property
    def required(self) -> tuple[str, ...]:
        return (self.wl.entity, *self.wl.numeric, *self.wl.categorical)

    @property
    def outputs(self) -> dict[str, str]:
        known = f"{self.wl.entity}_known"
        if self.wl.task == "binary":
            return {"score": "FP64", "decision": "BOOL", known: "BOOL"}
        return {"label": "BYTES", "confidence": "FP64", known: "BOOL"}

    def parse_v1(self, instances: Any) -> Parsed:
        required = self.required
        check_instances(instances, self.max_batch, self.row_name, required)
        allowed = set(self.fields)
        cols: dict[str, list[Any]] = {c: [] for c in required}
        for i, inst in enumerate(instances):
            unknown = [k for k in inst if k not in allowed]
            if unknown:
                raise RequestError(f"instances[{i}] has unknown field(s): {', '.join(map(str, unknown[:5]))}")
            missing = [k for k in required if k not in inst]
            if missing:
                raise RequestError(f"instances[{i}] is missing field(s): {', '.join(missing)}")
            cols[self.wl.entity].append(integer(inst[self.wl.entity], i, self.wl.entity))
            for c, (lo, hi) in self.wl.numeric.items():
                cols[c].append(number(inst[c], i, c, lo, hi))
            for c, allowed_values in self.wl.categorical.items():
                cols[c].append(choice(inst[c], i, c, allowed_values))
        out = {c: np.asarray(v, dtype=np.int64 if c == self.wl.entity else object if c in self.wl.categorical else np.float64)
               for c, v in cols.items()}
        return Parsed(out, len(instances))

    def respond(self, parsed: Parsed, probs: np.ndarray, known: dict[str, np.ndarray]) -> Answer:
        k = known.get(self.wl.entity, np.zeros(parsed.n, dtype=bool))
        name = f"{self.wl.entity}_known"
        if self.wl.task == "binary":
            s = np.asarray(probs, dtype=np.float64).reshape(-1)
            d = s >= self.threshold
            preds = [{"score": round(float(a), 6), "decision": bool(b), name: bool(c)} for a, b, c in zip(s, d, k, strict=True)]
            return Answer(preds, [("score", "FP64", s.tolist()), ("decision", "BOOL", d.tolist()), (name, "BOOL", [bool(x) for x in k])])
        classes = [str(c) for c in self.wl.classes]
        p = np.asarray(probs, dtype=np.float64)
        top = p.argmax(axis=1)
        conf = p[np.arange(len(top)), top]
        preds = [{"label": classes[t], "confidence": round(float(c), 6), name: bool(x)} for t, c, x in zip(top, conf, k, strict=True)]
        return Answer(preds, [("label", "BYTES", [classes[t] for t in top]), ("confidence", "FP64", conf.tolist()), (name, "BOOL", [bool(x) for x in k])])

    def monitored(self, cols: Mapping[str, Any], feeds: Mapping[str, np.ndarray], outputs: list[np.ndarray],
                  probs: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        x = feeds["features"]
        assert self.kit is not None
        names = [*self.kit.numeric_inputs, f"{self.wl.entity}_known"]
        numeric = {n: x[:, i].astype(np.float64) for i, n in enumerate(names)}
        categorical = {c: np.asarray(cols[c], dtype=object).astype(str) for c in self.wl.categorical if c in cols}
        return numeric, categorical

    def instances(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        out = []
        for rec in frame[[self.wl.entity, *self.wl.numeric, *self.wl.categorical]].to_dict(orient="records"):
            rec[self.wl.entity] = int(rec[self.wl.entity])
            for c in self.wl.numeric:
                rec[c] = float(rec[c])
            out.append(rec)
        return out
