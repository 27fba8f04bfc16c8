"""The one typed configuration of kindml.

Precedence (lowest first): built-in defaults → ``kindml.yaml`` (``--config``,
``$KINDML_CONFIG`` or ``./kindml.yaml``) → ``KINDML_<SECTION>__<FIELD>``
environment variables → command-line flags. Every model forbids unknown keys,
and a validation error names the file (or environment variable, or flag) and
the field that is wrong.

Loading is explicit (:func:`load_config`); nothing is read at import time.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kindml.errors import ConfigError

ENV_PREFIX = "KINDML_"
# KINDML_* variables that are not config fields.
RESERVED_ENV = {"KINDML_CONFIG", "KINDML_HOME", "KINDML_LOG_LEVEL", "KINDML_NO_PROGRESS", "KINDML_CLUSTER_TESTS", "KINDML_RUNTIME_ENV", "KINDML_RUN_ID", "KINDML_RUN_DIR"}
DEFAULT_CONFIG_FILE = "kindml.yaml"


class _ExplicitNull:
    """An override that really means null (``--set validation.freshness_days=null``); a plain None means "not given"."""

    def __repr__(self) -> str:
        return "null"


EXPLICIT_NULL = _ExplicitNull()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CorruptionSpec(_Strict):
    """Deliberate damage to generated data, to exercise validation.

    Which kinds exist is the workload's business (``Workload.corruption_kinds``);
    ``kinds: null`` means every kind the workload knows.
    """

    rate: float = Field(0.0, ge=0.0, le=0.5, description="Share of event rows damaged (one defect per row).")
    kinds: list[str] | None = Field(None, description="Defects to inject (default: every kind the workload offers).")

    @field_validator("kinds")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("at least one corruption kind is needed (or null for all)")
        return v


class DataConfig(_Strict):
    source: Literal["generate", "file"] = "generate"
    path: Path | None = Field(None, description="Bring-your-own data: a folder with the workload's tables as parquet or CSV (`kindml data schema`).")
    rows: int = Field(60_000, ge=500, le=20_000_000, description="Events (labelled rows) in the history window.")
    days: int = Field(60, ge=14, le=730, description="Days of history.")
    seed: int = Field(42, ge=0)
    end_date: date | None = Field(None, description="Last day of history; default: yesterday (the last complete UTC day).")
    corruption: CorruptionSpec = Field(default_factory=CorruptionSpec)
    drift: float = Field(1.0, ge=0.0, le=3.0, description="Drift severity of the live traffic replayed by `monitor` (0: none, 1: strong).")
    history_drift: float = Field(0.0, ge=0.0, le=3.0, description="Drift already present in the history window (retraining on recent data).")
    concept_shift: float = Field(1.0, ge=0.0, le=1.0, description="Concept shift of the late live traffic replayed by `monitor`: the labels' "
                                 "relationship to the inputs changes while the inputs do not (0: none). Its delayed labels show the quality drop.")

    @model_validator(mode="after")
    def _file_needs_path(self) -> DataConfig:
        if self.source == "file" and self.path is None:
            raise ValueError("data.source is 'file' but data.path is not set")
        return self


class ValidationConfig(_Strict):
    quarantine: bool = Field(False, description="Write bad rows aside and continue instead of failing.")
    freshness_days: int | None = Field(3, ge=0, description="Newest event must be at most this many days old (null: no check).")
    max_quarantine_fraction: float = Field(0.2, ge=0.0, le=1.0, description="Fail even with quarantine above this share of bad rows.")
    example_rows: int = Field(5, ge=0, le=100)


class FeaturesConfig(_Strict):
    project: str = Field("kindml", pattern=r"^[a-z][a-z0-9_]{1,30}$")
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_connection: str = Field("", description="host:port of Redis when online_store is redis; empty: kindml starts one.")
    registry: str = Field(
        "",
        pattern=r"^$|^[A-Za-z0-9.\-]+:[0-9]{1,5}$",
        description="host:port of a Feast registry server (registry_type remote, what the Feast operator runs on the cluster); "
        "empty: the file registry in the workspace.",
    )


class TrainConfig(_Strict):
    workers: int = Field(2, ge=1, le=64, description="Ray Train workers (DDP).")
    cpus_per_worker: float = Field(1.0, gt=0)
    epochs: int = Field(6, ge=1, le=500)
    batch_size: int = Field(512, ge=8, le=65_536)
    tune_trials: int = Field(4, ge=1, le=200, description="Ray Tune trials (ASHA) before the final fit.")
    tune_epochs: int = Field(4, ge=1, le=100)
    seed: int = Field(42, ge=0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5, description="Newest share of the history held out for evaluation.")
    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    max_failures: int = Field(1, ge=0, le=10, description="Ray Train worker failures survived by restoring the last checkpoint.")


class EvaluateConfig(_Strict):
    metric: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{1,40}$",
                               description="The gate's metric (default: the workload's, e.g. roc_auc or macro_f1).")
    min_score: float = Field(0.80, ge=0.0, le=1.0, description="Floor of the gate's metric: a candidate below it is never promoted.")
    max_score: float | None = Field(None, gt=0.0, description="Ceiling of a lower-is-better gate metric (e.g. WAPE, log_loss): a candidate above it "
                                    "is never promoted; default: the workload's.")
    max_regression: float = Field(0.01, ge=0.0, le=1.0, description="Allowed worsening of the gate's metric vs the current champion.")
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Decision threshold on a binary model's score.")


class ExportConfig(_Strict):
    parity_tolerance: float = Field(1e-4, gt=0.0, description="Max abs difference ONNX vs PyTorch.")
    opset: int = Field(18, ge=13, le=23)


class QuantizeConfig(_Strict):
    """The export stage's optional quantize step (see kindml.bench.quantize.choose_variant)."""

    enabled: bool = Field(False, description="Build INT8 variants of the exported model and keep the fastest within the budget.")
    accuracy_budget: float = Field(0.005, ge=0.0, le=1.0, description="Largest allowed quality loss of a quantised variant vs FP32 (the workload's measure: AUC or macro-F1 drop).")


class BatchConfig(_Strict):
    """The batch stage (batch inference with Ray Data; see kindml.serving.batch)."""

    workers: int = Field(2, ge=1, le=64, description="Ray Data actors scoring in parallel (each loads the ONNX model once, one thread each).")
    batch_size: int | None = Field(None, ge=1, le=1_000_000, description="Rows per map_batches call (default: the workload's).")


class RegistryConfig(_Strict):
    model_name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,61}$",
                                   description="Registered model name (default: the workload's); also the InferenceService name on a cluster.")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; default: a SQLite store in the workspace.")
    champion_alias: str = Field("champion", pattern=r"^[a-z][a-z0-9_-]{0,30}$", description="The alias that is served (deploy serves NAME@champion).")
    staging_alias: str = Field("staging", pattern=r"^[a-z][a-z0-9_-]{0,30}$",
                               description="The alias of a version the gate passed that waits for approval (with require_approval).")
    challenger_alias: str = Field("challenger", pattern=r"^[a-z][a-z0-9_-]{0,30}$",
                                  description="The alias of a version tried next to the champion (A/B, canary); set with `kindml models alias`.")
    require_approval: bool = Field(False, description="The register stage never moves the champion: a version the gate passes gets the "
                                                      "staging alias and waits for `kindml models approve NAME@VERSION --reason ...`.")
    experiment: str | None = Field(None, description="MLflow experiment (default: kindml-<workload>).")
    promotion: Literal["direct", "experiment"] = Field(
        "direct", description="direct: a version the gate passes becomes the champion. experiment: while a champion exists it "
                              "gets the challenger alias instead, and deploy starts an A/B experiment against the champion "
                              "(`kindml experiment status` decides; see docs/experiments.md). Embedded target only.")
    experiment_mode: Literal["ab", "shadow", "canary"] = Field("ab", description="With promotion: experiment, how the challenger is tried.")

    @field_validator("champion_alias", "staging_alias", "challenger_alias")
    @classmethod
    def _alias(cls, alias: str, info: ValidationInfo) -> str:
        if alias == "latest" or re.fullmatch(r"v\d+", alias):
            raise ValueError(f"{alias!r} is reserved by MLflow ('latest' and v<number> name versions)")
        taken = [k for k in ("champion_alias", "staging_alias") if k != info.field_name and info.data.get(k) == alias]
        if taken:
            raise ValueError(f"{alias!r} is already registry.{taken[0]}: the champion, staging and challenger aliases must differ")
        return alias

    @property
    def model(self) -> str:
        """The model name; a :class:`ConfigError` when neither the config nor a workload set one."""
        if not self.model_name:
            raise ConfigError("registry.model_name is not set", "Run through a workload (`kindml run NAME`), or set registry.model_name.")
        return self.model_name


class KindmlConfig(_Strict):
    home: Path = Field(Path(".kindml"), description="Workspace folder ($KINDML_HOME).")
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    workloads: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-workload options, validated by the workload (e.g. workloads.text.customers)."
    )

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "command line") -> KindmlConfig:
        """Return a copy with dotted-key overrides (``{"train.workers": 3}``) applied and validated."""
        data = self.model_dump(mode="python")
        origins: dict[tuple[str, ...], str] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            keys = tuple(dotted.split("."))
            _set_path(data, keys, None if value is EXPLICIT_NULL else value)
            origins[keys] = source
        return _validate(data, origins, default_source=source)


def _set_path(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    cur = data
    for k in keys[:-1]:
        nxt = cur.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[k] = nxt
        cur = nxt
    cur[keys[-1]] = value


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _leaf_paths(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for k, v in data.items():
        if isinstance(v, Mapping) and v:
            paths.extend(_leaf_paths(v, (*prefix, str(k))))
        else:
            paths.append((*prefix, str(k)))
    return paths


def _origin_of(loc: tuple[str, ...], origins: Mapping[tuple[str, ...], str], default: str) -> str:
    # the longest recorded prefix of the error location wins
    for n in range(len(loc), 0, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    return default


def _validate(data: dict[str, Any], origins: Mapping[tuple[str, ...], str], default_source: str) -> KindmlConfig:
    try:
        return KindmlConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        sources = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            where = _origin_of(loc, origins, default_source)
            sources.append(where)
            field = ".".join(loc) or "(top level)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (not a kindml setting)"
            lines.append(f"{where}: {field}: {msg}" + (f" (got {err['input']!r})" if err["type"] != "extra_forbidden" and not isinstance(err.get("input"), dict) else ""))
        raise ConfigError(
            "invalid configuration:\n  " + "\n  ".join(lines),
            f"Fix the field(s) above in {', '.join(dict.fromkeys(sources))}. "
            "`kindml config show` prints every setting and its default.",
        ) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", "Pass an existing file with --config or unset KINDML_CONFIG.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text", "Save it as UTF-8 YAML.") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", "Check the path and its permissions.") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}", "Fix the YAML syntax (indentation, colons, quotes).") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(loaded).__name__}", "See `kindml config show` for the expected layout.")
    return loaded


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for name, raw in environ.items():
        # only KINDML_<SECTION>__<FIELD> names are settings; other KINDML_* variables
        # (KINDML_HOME, KINDML_RUN_DIR, in-cluster wiring, ...) belong to the runtime
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV or "__" not in name:
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        if not all(keys):
            raise ConfigError(f"environment variable {name}: malformed name", "Use KINDML_<SECTION>__<FIELD>, e.g. KINDML_TRAIN__WORKERS=2.")
        value: Any = raw
        stripped = raw.strip()
        if stripped[:1] in "[{":
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                raise ConfigError(f"environment variable {name}: not valid JSON: {raw!r}", "Lists and mappings in environment variables are written as JSON.") from None
        _set_path(data, keys, value)
        origins[keys] = f"environment variable {name}"
    return data, origins


def find_config_file(explicit: Path | str | None = None, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("KINDML_CONFIG"):
        return Path(environ["KINDML_CONFIG"])
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_FILE
    return candidate if candidate.is_file() else None


def apply_defaults(data: dict[str, Any], origins: dict[tuple[str, ...], str], defaults: Mapping[str, Any] | None, source: str) -> None:
    """Lay dotted ``defaults`` (a workload's, e.g. ``{"train.epochs": 8}``) under ``data``."""
    for dotted, value in (defaults or {}).items():
        keys = tuple(dotted.split("."))
        _set_path(data, keys, value)
        origins[keys] = source


def load_config(
    path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    defaults: Mapping[str, Any] | None = None,
    defaults_source: str = "workload defaults",
) -> KindmlConfig:
    """Build the effective config: built-in defaults → a workload's defaults → file → environment → overrides."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    apply_defaults(data, origins, defaults, defaults_source)
    cfg_file = find_config_file(path, environ, cwd)
    if cfg_file is not None:
        file_data = _read_yaml(cfg_file)
        data = _deep_merge(data, file_data)
        for leaf in _leaf_paths(file_data):
            origins[leaf] = str(cfg_file)
    env_data, env_origins = _env_overrides(environ)
    data = _deep_merge(data, env_data)
    origins.update(env_origins)
    if environ.get("KINDML_HOME"):
        data["home"] = environ["KINDML_HOME"]
        origins[("home",)] = "environment variable KINDML_HOME"
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        keys = tuple(dotted.split("."))
        _set_path(data, keys, None if value is EXPLICIT_NULL else value)
        origins[keys] = "command line"
    default_source = str(cfg_file) if cfg_file else "built-in defaults"
    cfg = _validate(data, origins, default_source)
    base = cwd or Path.cwd()
    if not cfg.home.is_absolute():
        cfg = cfg.model_copy(update={"home": (base / cfg.home).resolve()})
    if cfg.data.path is not None and not cfg.data.path.is_absolute():
        anchor = cfg_file.parent if cfg_file and ("data", "path") in origins and origins[("data", "path")] == str(cfg_file) else base
        cfg.data = cfg.data.model_copy(update={"path": (anchor / cfg.data.path).resolve()})
    return cfg
