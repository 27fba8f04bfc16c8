"""The sections of the run report. Each takes the :class:`~kindml.report.collect.RunData` and returns markup.

A section whose data is missing says why (the run stopped earlier, the stage
was skipped, the run predates the artifact) instead of failing; the page
assembly (:mod:`kindml.report.render`) also catches any error of a section.
"""

from __future__ import annotations

from typing import Any

from kindml.report import svg
from kindml.report.collect import RunData, fmt_duration
from kindml.report.markup import badge, cards, esc, grid, kv, note, num, pct, short, table

# Which stage produces what a section shows: explains a missing section.
PRODUCER = {"validation": "validate", "training": "train", "evaluation": "evaluate", "registry": "register", "batch": "batch",
            "importance": "export", "audit": "register",
            "serving": "monitor", "drift": "monitor", "alerts": "monitor"}
METHOD_COLORS = {"psi": svg.PALETTE[0], "js": svg.PALETTE[3], "ks": svg.PALETTE[2]}
DEFAULT_THRESHOLDS = {"psi": 0.2, "prediction_psi": 0.2, "ks_min": 0.05, "ks_c_alpha": 1.95}


def why_missing(data: RunData, stage: str, what: str) -> str:
    """A note explaining why ``what`` (made by ``stage``) is absent."""
    s = data.summary
    info = (s.get("stages") or {}).get(stage) or {}
    status = info.get("status")
    failed = s.get("failed_stage")
    if status == "skipped":
        return note(f"No {what}: stage {stage} was skipped in this run (run without --no-serve to deploy and monitor).", "info")
    if failed and failed != stage and status in (None, "not_run"):
        return note(f"No {what}: the run stopped at stage {failed} before {stage} ran.", "warn")
    if status in ("failed", "interrupted"):
        return note(f"No {what}: stage {stage} {status}.", "error")
    if s.get("status") == "running":
        return note(f"No {what} yet: the run is still running.", "info")
    return note(f"No {what} recorded for this run.", "info")


# ---------------------------------------------------------------- overview
def overview(data: RunData) -> str:
    s = data.summary
    out: list[str] = []
    status = str(s.get("status") or "unknown")
    if status != "succeeded":
        err = s.get("error") or {}
        stage = s.get("failed_stage") or "?"
        msg = f"<strong>Run {esc(status)} at stage {esc(stage)}</strong>"
        if err.get("message"):
            msg += f": {esc(err['message'])}"
        if err.get("hint"):
            msg += f'<div class="hint">hint: {esc(err["hint"])}</div>'
        if s.get("validation_report"):
            msg += f'<div class="hint">validation report: <code>{esc(s["validation_report"])}</code></div>'
        out.append(note(msg, "error" if status in ("failed", "interrupted") else "info", raw=True))
    m = s.get("metrics") or {}
    model = s.get("model") or {}
    serving = s.get("serving") or {}
    drift = s.get("drift") or {}
    max_psi = max((v for v in (drift.get("max_psi") or {}).values() if isinstance(v, int | float)), default=None)
    alerts = drift.get("alerts_fired")
    if "recall_at_10" in m:
        headline = ("recall@10", num(m.get("recall_at_10")), f"NDCG@10 {num(m.get('ndcg_at_10'))}")
    elif "wape" in m:
        headline = ("WAPE", num(m.get("wape")), f"MASE {num(m.get('mase'))}")
    elif "roc_auc" in m or "macro_f1" not in m:
        headline = ("ROC AUC", num(m.get("roc_auc")), f"PR AUC {num(m.get('pr_auc'))}" if m.get("pr_auc") is not None else "")
    else:
        headline = ("macro-F1", num(m.get("macro_f1")), f"accuracy {num(m.get('accuracy'))}")
    tiles = [
        ("status", badge(status), f"{fmt_duration(s.get('seconds'))} total"),
        headline,
        ("model", f"{esc(model.get('name') or '-')} v{esc(model.get('version') or '-')}" if model else "-",
         ("promoted to " + str(model.get("alias") or "champion")) if model.get("promoted") else ("not promoted" if model else "not registered")),
        ("p99 latency", f"{num(serving.get('p99_ms'), 3)} ms" if serving else "-",
         f"{num(serving.get('requests'))} requests, {num(serving.get('errors'))} errors" if serving else "not served"),
        ("max feature PSI", num(max_psi), f"{len(alerts)} alerts fired" if isinstance(alerts, list) else "not monitored"),
    ]
    out.append(cards(tiles))
    d = s.get("data") or {}
    facts = [("run id", data.run_id), ("pipeline", s.get("pipeline")), ("target", s.get("target")), ("started", s.get("started")),
             ("finished", s.get("finished")), ("run folder", s.get("run_dir") or data.run_dir)]
    if d:
        # the workload's own facts (entity counts, the positive rate, ...) next to the platform's
        extra = [(k.replace("_", " "), pct(v) if k.endswith(("_rate", "_share")) else v) for k, v in d.items()
                 if k not in ("rows", "content_hash", "window_start", "window_end")]
        facts += [("rows", d.get("rows")), *extra,
                  ("data window", f"{d.get('window_start', '?')} → {d.get('window_end', '?')}"), ("data hash", short(d.get("content_hash"), 20))]
    out.append(grid([kv(facts[:6]), kv(facts[6:]) if len(facts) > 6 else ""], "grid two"))
    params = s.get("params") or {}
    if params:
        out.append("<details><summary>parameters</summary>" + kv(sorted(params.items()), code=True) + "</details>")
    return "".join(out)


# ---------------------------------------------------------------- timeline
def timeline(data: RunData) -> str:
    spans = data.timeline
    if not spans:
        return note("No stages recorded in summary.json.", "warn")
    rows = [(sp.name, sp.start_s, sp.end_s, sp.status, f"{sp.seconds:.1f} s" if sp.seconds else "")
            for sp in spans]
    total = max((sp.end_s for sp in spans if sp.end_s is not None), default=0.0)
    legend = " ".join(badge(st) for st in dict.fromkeys(sp.status for sp in spans))
    return (svg.gantt(rows, title=f"stages ({fmt_duration(total)} from the first stage's start)")
            + f'<p class="legend">{legend}</p>')


# ---------------------------------------------------------------- validation
def validation(data: RunData) -> str:
    v = data.get("validation")
    vs = data.get("validation_summary") or data.summary.get("validation")
    if not v and not vs:
        return why_missing(data, "validate", "data validation results")
    v = v or {}
    vs = vs or {}
    success = v.get("success", vs.get("success"))
    outcomes: list[dict[str, Any]] = list(v.get("outcomes") or [])
    failed = [o for o in outcomes if not o.get("success")]
    out = []
    summary = vs.get("summary") or (f"{v.get('table', 'data')}: {len(outcomes) - len(failed)} of {len(outcomes)} expectations passed")
    if success:
        out.append(note(f"Passed: {summary}", "ok"))
    else:
        out.append(note(f"<strong>Validation FAILED</strong>: {esc(summary)}", "error", raw=True))
    out.append(cards([
        ("rows", num(v.get("rows", vs.get("rows"))), str(v.get("table") or "")),
        ("expectations", num(v.get("evaluated_expectations", vs.get("evaluated_expectations", len(outcomes) or None))), ""),
        ("failed", num(v.get("failed_expectations", vs.get("failed_expectations", len(failed)))), ""),
        ("quarantined rows", num(v.get("quarantined_rows", vs.get("quarantined_rows"))), f"{num(vs.get('clean_rows'))} clean rows" if vs.get("clean_rows") is not None else ""),
    ]))
    reasons = v.get("quarantine_reasons") or vs.get("quarantine_reasons") or {}
    if reasons:
        out.append(table(["quarantine reason", "rows"], [[esc(k), num(n)] for k, n in reasons.items()], numeric=[1]))

    def rows(items: list[dict[str, Any]]) -> list[list[str]]:
        return [[badge("failed" if not o.get("success") else "succeeded"), esc(o.get("expectation")), esc(o.get("column") or "(table)"),
                 num(o.get("unexpected_count")), f"{o['unexpected_percent']:.2f}" if isinstance(o.get("unexpected_percent"), int | float) else "-",
                 esc(short(o.get("examples") or o.get("observed") or o.get("detail") or "", 90))] for o in items]

    head = ["result", "expectation", "column", "unexpected rows", "%", "examples / observed"]
    if failed:
        out.append(table(head, rows(failed), numeric=[3, 4], caption="failed expectations"))
    passed = [o for o in outcomes if o.get("success")]
    if passed:
        out.append(f"<details><summary>{len(passed)} passed expectations</summary>{table(head, rows(passed), numeric=[3, 4])}</details>")
    if v.get("validated_at"):
        out.append(f'<p class="muted">validated at {esc(v["validated_at"])}</p>')
    return "".join(out)


# ---------------------------------------------------------------- training
def training(data: RunData) -> str:
    tr = data.get("train_report")
    if not tr:
        return why_missing(data, "train", "training report")
    out = []
    secs = tr.get("seconds") or {}
    split = tr.get("split") or {}
    key = tr.get("val_metric") or "val_auc"
    label = {"val_auc": "AUC", "val_macro_f1": "macro-F1"}.get(key, key.removeprefix("val_"))
    out.append(cards([
        (f"validation {label}", num(tr.get(key)), "best model on the validation split"),
        ("Tune trials", num(len(tr.get("trials") or [])), f"{num(secs.get('tune'))} s tuning" if secs.get("tune") is not None else ""),
        ("final fit", f"{num(secs.get('fit'))} s" if secs.get("fit") is not None else "-", f"{num(tr.get('workers'))} Ray Train workers"),
        ("split rows", " / ".join(num(split.get(k)) for k in ("train", "val", "test")) if split else "-", "train / val / test"),
    ]))
    hist = tr.get("history") or []
    charts = []
    if hist:
        ep = [h.get("epoch") for h in hist]
        charts.append(svg.line_chart([svg.Series("train loss", ep, [h.get("train_loss") for h in hist], markers=True)],
                                     title="training loss per epoch", x_label="epoch", y_label="loss", legend=False, integer_x=True))
        charts.append(svg.line_chart([svg.Series(f"val {label}", ep, [h.get(key) for h in hist], color=svg.PALETTE[2], markers=True)],
                                     title=f"validation {label} per epoch", x_label="epoch", y_label=label, legend=False, integer_x=True))
        out.append(grid(charts, "grid two"))
    else:
        out.append(note("No per-epoch history in the training report.", "info"))
    trials = tr.get("trials") or []
    if trials:
        keys = [k for k in trials[0] if k not in (key, "epochs_run")]
        best = max((t.get(key) for t in trials if isinstance(t.get(key), int | float)), default=None)
        body = [[num(i + 1)] + [num(t.get(k)) for k in keys] + [num(t.get(key)), num(t.get("epochs_run"))] for i, t in enumerate(trials)]
        classes = ["best" if t.get(key) == best and best is not None else "" for t in trials]
        out.append(table(["trial", *keys, f"val {label}", "epochs"], body, classes, numeric=range(len(keys) + 3),
                         caption="Ray Tune trials (best highlighted)"))
    if tr.get("best_params"):
        out.append("<h3>best hyper-parameters</h3>" + kv(tr["best_params"].items(), code=True))
    facts = [("net", ", ".join(f"{k}={v}" for k, v in (tr.get("net") or {}).items())), ("seed", tr.get("seed")),
             ("restored from checkpoint", tr.get("restored_from_checkpoint")), ("MLflow run", tr.get("mlflow_run_id"))]
    out.append(kv([(k, v) for k, v in facts if v not in (None, "")]))
    return "".join(out)


# ---------------------------------------------------------------- evaluation
def evaluation(data: RunData) -> str:
    m = data.get("metrics") or {}
    curves = data.get("curves") or {}
    gate = data.get("gate") or data.summary.get("gate")
    if not m and not curves:
        return why_missing(data, "evaluate", "evaluation")
    out = []
    if gate:
        reasons = "; ".join(gate.get("reasons") or [])
        out.append(note(f"<strong>Gate: {'promote' if gate.get('promote') else 'do not promote'}</strong> — {esc(reasons)}",
                        "ok" if gate.get("promote") else "warn", raw=True))
    if m.get("task") == "multiclass":
        out.append(multiclass_evaluation(m, gate))
        return "".join(out)
    if m.get("task") == "ranking":
        out.append(ranking_evaluation(m, gate))
        return "".join(out)
    if m.get("task") == "regression":
        out.append(regression_evaluation(m, gate))
        return "".join(out)
    positive = str(m.get("positive_label") or "positive")
    out.append(cards([
        ("ROC AUC", num(m.get("roc_auc")), f"floor {num((gate or {}).get('floor'))}" if gate else ""),
        ("PR AUC", num(m.get("pr_auc")), f"base rate {pct(m['positives'] / m['rows'])}" if m.get("rows") and m.get("positives") is not None else ""),
        ("precision / recall", f"{num(m.get('precision'), 3)} / {num(m.get('recall'), 3)}", f"at threshold {num(m.get('threshold'))}"),
        ("recall at 1 % alerts", num(m.get("recall_at_1pct_alerts"), 3), "flagging the top 1 % of scores"),
        ("Brier / ECE", f"{num(m.get('brier'), 3)} / {num(m.get('ece'), 3)}", "calibration"),
    ]))
    charts = []
    if curves.get("roc_fpr") and curves.get("roc_tpr"):
        charts.append(svg.line_chart([svg.Series(f"ROC (AUC {num(m.get('roc_auc'), 3)})", curves["roc_fpr"], curves["roc_tpr"])],
                                     title="ROC curve", x_label="false positive rate", y_label="true positive rate",
                                     x_range=(0, 1), y_range=(0, 1), diagonal=True))
    if curves.get("pr_recall") and curves.get("pr_precision"):
        base = m["positives"] / m["rows"] if m.get("rows") and m.get("positives") is not None else None
        charts.append(svg.line_chart([svg.Series(f"PR (AUC {num(m.get('pr_auc'), 3)})", curves["pr_recall"], curves["pr_precision"], color=svg.PALETTE[3])],
                                     title="precision-recall curve", x_label="recall", y_label="precision", x_range=(0, 1), y_range=(0, 1),
                                     hlines=[svg.HLine(base, f"base rate {base:.3f}", "#6b7280")] if base else []))
    cal = m.get("calibration") or []
    if cal:
        charts.append(svg.line_chart([svg.Series("model", [c.get("mean_score") for c in cal], [_observed(c) for c in cal],
                                                 color=svg.PALETTE[4], markers=True)],
                                     title="calibration (reliability)", x_label="mean predicted score", y_label=f"observed {positive} rate",
                                     x_range=(0, 1), y_range=(0, 1), diagonal=True))
    conf = m.get("confusion")
    if conf:
        charts.append(confusion_matrix(conf, m.get("threshold"), positive))
    if charts:
        out.append(grid(charts, "grid two"))
    else:
        out.append(note("No ROC/PR curves stored for this run.", "info"))
    out.append(baselines_table(m, "roc_auc"))
    return "".join(out)


def _observed(bin_: dict[str, Any]) -> Any:
    """A calibration bin's observed positive rate (older runs named it after their workload's label)."""
    return bin_.get("positive_rate", next((v for k, v in bin_.items() if k.endswith("_rate")), None))


def baselines_table(m: dict[str, Any], metric: str) -> str:
    base = m.get("baselines") or {}
    if not base:
        return ""
    rows = [["this model", num(m.get(metric)), ""]] + [[esc(name), num(b.get(metric)), esc(b.get("note") or "")] for name, b in base.items()]
    return table(["model", metric.replace("_", " "), "note"], rows, ["best", *[""] * len(base)], numeric=[1],
                 caption="baselines on the same holdout")


def multiclass_evaluation(m: dict[str, Any], gate: dict[str, Any] | None) -> str:
    out = [cards([
        ("macro-F1", num(m.get("macro_f1")), f"floor {num((gate or {}).get('floor'))}" if gate else ""),
        ("accuracy", num(m.get("accuracy")), f"{num(m.get('rows'))} holdout rows"),
        ("weighted F1", num(m.get("weighted_f1")), ""),
        ("log loss / ECE", f"{num(m.get('log_loss'), 3)} / {num(m.get('ece'), 3)}", "calibration of the top score"),
    ])]
    per = m.get("per_class") or []
    if per:
        out.append(table(["class", "precision", "recall", "F1", "support"],
                         [[esc(c["class"]), num(c["precision"], 3), num(c["recall"], 3), num(c["f1"], 3), num(c["support"])] for c in per],
                         numeric=[1, 2, 3, 4], caption="per class"))
    classes, cm = m.get("classes") or [], m.get("confusion_matrix") or []
    if classes and cm:
        total = max(sum(sum(r) for r in cm), 1)
        head = "".join(f"<th>{esc(c)}</th>" for c in classes)
        body = []
        for name, row in zip(classes, cm, strict=False):
            cells = []
            for j, n in enumerate(row):
                good = classes[j] == name
                alpha = 0.08 + 0.7 * min(1.0, n / total * len(classes))
                color = f"rgba(22,163,74,{alpha:.2f})" if good else f"rgba(220,38,38,{alpha:.2f})" if n else "transparent"
                cells.append(f'<td class="cm" style="background:{color}"><div class="n">{n:,}</div></td>')
            body.append(f"<tr><th>{esc(name)}</th>{''.join(cells)}</tr>")
        out.append('<div class="cmwrap"><div class="charttitle">confusion matrix (rows: actual, columns: predicted)</div>'
                   f'<table class="cmtable"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    out.append(baselines_table(m, "macro_f1"))
    return "".join(out)


def regression_evaluation(m: dict[str, Any], gate: dict[str, Any] | None) -> str:
    """Forecast errors next to seasonal-naive's, WAPE per horizon day, and forecast vs actual for a few series."""
    naive = (m.get("baselines") or {}).get("seasonal_naive") or {}
    gain = m.get("wape_improvement_vs_seasonal_naive")
    out = [cards([
        ("WAPE", num(m.get("wape")), f"ceiling {num((gate or {}).get('floor'))}" if gate else ""),
        ("vs seasonal-naive", pct(gain) + " lower" if svg.finite(gain) else "-", f"seasonal-naive WAPE {num(naive.get('wape'))}" if naive else ""),
        ("MASE", num(m.get("mase")), f"seasonal-naive {num(naive.get('mase'))}" if naive else "below 1: better than naive in-sample"),
        ("sMAPE", num(m.get("smape")), f"seasonal-naive {num(naive.get('smape'))}" if naive else ""),
        ("MAE / RMSE", f"{num(m.get('mae'), 2)} / {num(m.get('rmse'), 2)}", f"{num(m.get('series'))} series, horizon {num(m.get('horizon'))}"),
    ])]
    charts = []
    by_h, by_h_naive = m.get("wape_by_horizon") or [], m.get("wape_by_horizon_seasonal_naive") or []
    if by_h:
        days = list(range(1, len(by_h) + 1))
        series = [svg.Series("model", days, by_h, markers=True)]
        if len(by_h_naive) == len(by_h):
            series.append(svg.Series("seasonal-naive", days, by_h_naive, color=svg.PALETTE[3], dash=True, markers=True))
        charts.append(svg.line_chart(series, title="WAPE per horizon day (backtest)", x_label="days ahead", y_label="WAPE", integer_x=True))
    for ex in (m.get("examples") or [])[:3]:
        xs = list(range(len(ex.get("actual") or [])))
        if not xs:
            continue
        days = ex.get("days") or []
        span = f" ({days[0]} .. {days[-1]})" if days else ""
        charts.append(svg.line_chart([svg.Series("actual", xs, ex["actual"], color="#111827", markers=True),
                                      svg.Series("model, 1 day ahead", xs, ex.get("forecast") or []),
                                      svg.Series("seasonal-naive", xs, ex.get("seasonal_naive") or [], color=svg.PALETTE[3], dash=True)],
                                     title=f"series {ex.get('series_id')}: forecast vs actual{span}", x_label="backtest origin (days)",
                                     y_label="units", integer_x=True))
    if charts:
        out.append(grid(charts, "grid two"))
    out.append(baselines_table(m, "wape"))
    return "".join(out)


def ranking_evaluation(m: dict[str, Any], gate: dict[str, Any] | None) -> str:
    """Top-K metrics, recall@K and NDCG@K curves next to the baselines', and per-segment figures."""
    pop = (m.get("baselines") or {}).get("popularity") or {}
    out = [cards([
        ("recall@10", num(m.get("recall_at_10")), f"floor {num((gate or {}).get('floor'))}" if gate else ""),
        ("vs popularity", f"{num(m.get('recall_at_10_vs_popularity'), 2)}x", f"popularity recall@10 {num(pop.get('recall_at_10'))}" if pop else ""),
        ("NDCG@10", num(m.get("ndcg_at_10")), f"popularity {num(pop.get('ndcg_at_10'))}" if pop else ""),
        ("precision@10", num(m.get("precision_at_10")), f"{num(m.get('users'))} users evaluated"),
        ("coverage", pct(m.get("coverage")), "of the catalogue in someone's top 10"),
    ])]
    curve, base = m.get("curve") or {}, m.get("popularity_curve") or {}
    charts = []
    for key, name in (("recall", "recall@K"), ("ndcg", "NDCG@K")):
        if curve.get("k") and curve.get(key):
            series = [svg.Series("model", curve["k"], curve[key], markers=True)]
            if base.get("k") and base.get(key):
                series.append(svg.Series("popularity baseline", base["k"], base[key], color=svg.PALETTE[3], dash=True, markers=True))
            charts.append(svg.line_chart(series, title=f"{name} on the holdout", x_label="K (list length)", y_label=name, integer_x=True))
    if charts:
        out.append(grid(charts, "grid two"))
    seg = m.get("segments") or {}
    if seg:
        out.append(table(["users", "count", "recall@10", "NDCG@10"],
                         [[esc(k.replace("_", " ")), num(v.get("users")), num(v.get("recall_at_10")), num(v.get("ndcg_at_10"))] for k, v in seg.items()],
                         numeric=[1, 2, 3], caption="by segment: users the model was trained on, and users it meets for the first time"))
    if m.get("relevance"):
        out.append(f'<p class="muted">relevant: {esc(m["relevance"])}</p>')
    out.append(baselines_table(m, "recall_at_10"))
    return "".join(out)


def confusion_matrix(conf: dict[str, Any], threshold: Any = None, positive: str = "positive") -> str:
    tn, fp, fn, tp = (int(conf.get(k) or 0) for k in ("tn", "fp", "fn", "tp"))
    total = max(tn + fp + fn + tp, 1)

    def cell(n: int, good: bool) -> str:
        share = n / total
        alpha = 0.12 + 0.7 * min(1.0, share * 2)
        color = f"rgba(22,163,74,{alpha:.2f})" if good else f"rgba(220,38,38,{alpha:.2f})"
        return f'<td class="cm" style="background:{color}"><div class="n">{n:,}</div><div class="sub">{share * 100:.1f} %</div></td>'

    return ('<div class="cmwrap"><div class="charttitle">confusion matrix'
            + (f" (threshold {esc(threshold)})" if threshold is not None else "") + "</div>"
            f'<table class="cmtable"><thead><tr><th></th><th>predicted negative</th><th>predicted {esc(positive)}</th></tr></thead><tbody>'
            f"<tr><th>actual negative</th>{cell(tn, True)}{cell(fp, False)}</tr>"
            f"<tr><th>actual {esc(positive)}</th>{cell(fn, False)}{cell(tp, True)}</tr></tbody></table></div>")


# ---------------------------------------------------------------- registry
LINEAGE_COLUMNS = (("run", "kindml.pipeline_run_id"), ("ROC AUC", "kindml.roc_auc"), ("macro-F1", "kindml.macro_f1"), ("recall@10", "kindml.recall_at_10"),
                   ("WAPE", "kindml.wape"), ("gate", "kindml.gate"),
                   ("data rows", "kindml.data_rows"), ("data hash", "kindml.data_hash"), ("validation", "kindml.validation_success"),
                   ("git", "kindml.git_commit"))


def _registered_note(r: dict[str, Any], version: str) -> str:
    name = f"<strong>{esc(r.get('name'))} v{esc(version)}</strong>"
    if r.get("promoted"):
        return note(f"This run registered {name} and moved the alias <code>{esc(r.get('alias'))}</code> to it.", "ok", raw=True)
    if r.get("awaiting_approval"):
        return note(f"This run registered {name}; the gate passed it and <code>registry.require_approval</code> is on, so it holds "
                    f"<code>{esc(r.get('alias'))}</code> and waits for a person: <code>kindml models approve {esc(r.get('name'))}@{esc(version)} "
                    "--reason ...</code> makes it the champion (see the audit trail below).", "warn", raw=True)
    return note(f"This run registered {name} (not promoted: the champion stays).", "info", raw=True)


def registry(data: RunData) -> str:
    from kindml.approvals import status_of

    reg = data.get("registered")
    model = data.summary.get("model") or {}
    if not reg and not model and data.versions is None:
        return why_missing(data, "register", "registered model")
    out = []
    version = str((reg or model).get("version") or "")
    if reg or model:
        out.append(_registered_note({**model, **(reg or {})}, version))
    if data.versions:
        body, classes = [], []
        for v in data.versions:
            tags = v.get("tags") or {}
            body.append([esc(v.get("version")), esc(", ".join(v.get("aliases") or [])) or "-", esc(status_of(tags))]
                        + [esc(short(tags.get(t), 12 if t in ("kindml.data_hash", "kindml.git_commit") else 40)) or "-" for _, t in LINEAGE_COLUMNS])
            classes.append("best" if str(v.get("version")) == version else "")
        out.append(table(["version", "aliases", "approval", *(c for c, _ in LINEAGE_COLUMNS)], body, classes,
                         caption=f"versions of {(reg or model).get('name', 'the model')} in the registry (this run's highlighted)"))
    elif data.versions is None:
        out.append(note("The registry was not queried or not reachable; the lineage below comes from the run's own record.", "info"))
    tags = (reg or {}).get("tags") or {}
    if tags:
        out.append("<h3>lineage of this version</h3>" + kv(((k.removeprefix("kindml."), v) for k, v in tags.items()), code=True))
    if (reg or model).get("onnx_path"):
        out.append(f'<p class="muted">ONNX file: <code>{esc((reg or model)["onnx_path"])}</code></p>')
    return "".join(out)


# ---------------------------------------------------------------- batch inference
def batch(data: RunData) -> str:
    b = data.get("batch")
    if not b:
        stages = data.summary.get("stages") or {}
        if "batch" not in stages:
            return note("This pipeline has no batch inference stage.", "info")
        return why_missing(data, "batch", "batch inference")
    eng = b.get("engine") or {}
    what = b.get("what") or "rows"
    secs = b.get("seconds") or {}
    srv = data.summary.get("serving") or {}
    out = [cards([
        (f"{what} scored", num(b.get("rows")), f"by {esc(b.get('model'))} v{esc(b.get('version'))}"),
        (f"{what}/s", num(eng.get("rows_per_s")), f"{esc(eng.get('engine'))}, {num(eng.get('workers'))} workers, actor start-up included"),
        ("scoring", f"{num(eng.get('seconds'))} s", f"+ {num(secs.get('ray_start'))} s starting Ray"),
        ("write-back", f"{num(secs.get('write_back'))} s", f"Feast view {esc((b.get('sink') or {}).get('view') or '-')}"),
        ("online p50 / p99", f"{num(srv.get('p50_ms'), 3)} / {num(srv.get('p99_ms'), 3)} ms" if srv else "-", "the predictor, same run"),
    ])]
    out.append(svg.hbars([(k.replace("_", " "), v) for k, v in secs.items() if k != "total" and isinstance(v, int | float)],
                         title="batch stage seconds per step", value_fmt="{:.2f} s", width=900))
    out.append(kv([("output", b.get("output")), ("feature service joined", b.get("feature_service")),
                   ("offline table", (b.get("sink") or {}).get("offline_table")), ("online store", (b.get("sink") or {}).get("online_store"))]))
    return "".join(out)


# ---------------------------------------------------------------- importance
IMPORTANCE_ROWS = 25


def importance(data: RunData) -> str:
    """This run's global importance (mean |Shapley value| per input) next to the champion's (or the previous version's)."""
    from kindml.explain.importance import compare

    doc = data.get("importance")
    if not doc:
        export = ((data.summary.get("stages") or {}).get("export") or {}).get("status")
        if export == "succeeded" or export == "cached":
            return note("No global importance for this run's model: the run predates explanations, its model kit declares none, "
                        "or captum was not installed when it was exported (pip install 'kindml[explain]').", "info")
        return why_missing(data, "export", "global feature importance")
    other = data.importance_other or {}
    other_doc = other.get("doc")
    version = str((data.get("registered") or data.summary.get("model") or {}).get("version") or "this run")
    out = [cards([
        ("top input", esc((doc.get("players") or [{}])[0].get("name", "-")), f"{pct((doc.get('players') or [{}])[0].get('share'))} of the total"),
        ("explained output", esc(doc.get("target")), f"{num(doc.get('rows'))} holdout rows"),
        ("budget", f"{num(doc.get('model_rows'))} model rows", f"{num(doc.get('background_rows'))} background rows, "
                                                               f"{num(doc.get('samples'))} order(s), {num(doc.get('seconds'), 3)} s"),
        ("compared with", f"v{esc(other['version'])}" if other else "-", esc(other.get("role", "no earlier version")) if other else "no earlier version"),
    ])]
    if other and other_doc is None:
        out.append(note(f"v{other['version']} ({other['role']}) has no importance.json: it was registered before explanations.", "info"))
    rows = compare(doc, other_doc)[:IMPORTANCE_ROWS]
    out.append(svg.hbars([(r["name"], r["current"]) for r in rows], title=f"mean |Shapley value| per input, v{version}",
                         value_fmt="{:.4f}", width=900))
    head = ["input", f"v{version}", "rank"]
    if other_doc is not None:
        head += [f"v{other['version']} ({other['role']})", "rank", "change"]
    body, classes = [], []
    for r in rows:
        cells = [esc(r["name"]), num(r["current"]), num(r["current_rank"])]
        if other_doc is not None:
            cells += [num(r["other"]), num(r["other_rank"]), num(r["delta"])]
        body.append(cells)
        moved = r["current_rank"] is not None and r["other_rank"] is not None and abs(r["current_rank"] - r["other_rank"]) >= 3
        classes.append("bad" if other_doc is not None and (moved or r["other"] is None or r["current"] is None) else "")
    out.append(table(head, body, classes, numeric=range(1, len(head)),
                     caption=f"{doc.get('method')}; highlighted: an input that moved 3+ ranks or is new/gone" if other_doc is not None
                     else str(doc.get("method") or "")))
    return "".join(out)


AUDIT_ROWS = 200  # the newest events shown; `kindml models history NAME` prints all


def audit(data: RunData) -> str:
    """The audit trail of the run's model: this run's events (gate decision, alias move) and every approval,
    rejection, alias move and experiment decision around them."""
    from kindml.audit import describe

    reg = data.get("registered") or data.summary.get("model") or {}
    name = reg.get("name")
    if data.audit is None:
        if not name:
            return why_missing(data, "register", "audit trail")
        return note("The audit log was not read (report written with --no-registry, or it could not be read: see the notes at the end).", "info")
    if not data.audit:
        return note(f"No audit events of {name} yet (the run predates the audit log, or the registry is not this workspace's).", "info")
    events = data.audit[-AUDIT_ROWS:]
    mine = [e for e in data.audit if e.get("run_id") == data.run_id]
    out = []
    pending = str(reg.get("version") or "") if reg.get("awaiting_approval") else ""
    decided = [e for e in data.audit if e.get("kind") in ("approval", "rejection") and str(e.get("version")) == pending] if pending else []
    if pending and not decided:
        out.append(note(f"v{pending} is still waiting for approval.", "warn"))
    elif decided:
        last = decided[-1]
        out.append(note(f"v{pending} was {'approved' if last['kind'] == 'approval' else 'rejected'} by {last.get('who')} "
                        f"at {last.get('time')}: {last.get('why')}", "ok" if last["kind"] == "approval" else "info"))
    out.append(cards([("events of this run", str(len(mine)), ""), ("events of the model", str(len(data.audit)), ""),
                      ("approvals", str(sum(e.get("kind") == "approval" for e in data.audit)), ""),
                      ("rejections", str(sum(e.get("kind") == "rejection" for e in data.audit)), "")]))
    body, classes = [], []
    for e in events:
        body.append([esc(str(e.get("time", ""))[:19].replace("T", " ")), esc(e.get("kind")), esc(f"v{e['version']}" if e.get("version") else "-"),
                     esc(e.get("who")), esc(describe(e)), esc(short(e.get("why"), 120)), esc(e.get("run_id") or "-"),
                     esc(", ".join(e.get("stored") or []))])
        classes.append("best" if e.get("run_id") == data.run_id else "")
    caption = f"audit log of {name}, oldest first (this run's events highlighted)"
    if len(data.audit) > len(events):
        caption += f"; the newest {len(events)} of {len(data.audit)}: `kindml models history {name}` prints all"
    out.append(table(["when (UTC)", "event", "version", "who", "what", "why", "run", "stored in"], body, classes, caption=caption))
    return "".join(out)


# ---------------------------------------------------------------- serving
def serving(data: RunData) -> str:
    mon = data.get("monitor") or {}
    srv = mon.get("serving") or data.summary.get("serving")
    dep = data.summary.get("deployment") or data.get("deployed")
    if not srv:
        return why_missing(data, "monitor", "serving measurements")
    out = [cards([
        ("requests", num(srv.get("requests")), "replayed through the predictor"),
        ("errors", num(srv.get("errors")), "non-2xx answers"),
        ("p50 latency", f"{num(srv.get('p50_ms'), 3)} ms", "client-side, loopback"),
        ("p99 latency", f"{num(srv.get('p99_ms'), 3)} ms", ""),
    ])]
    if (srv.get("errors") or 0) > 0:
        out.insert(0, note(f"{srv['errors']} requests failed during the replay.", "error"))
    phases = mon.get("phases") or []
    if phases:
        body = [[esc(p.get("phase")), num(p.get("requests")), num(p.get("errors")), num(p.get("achieved_rps"), 1),
                 num(p.get("p50_ms"), 3), num(p.get("p90_ms"), 3), num(p.get("p99_ms"), 3), num(p.get("max_ms"), 3),
                 esc(", ".join(f"{k}: {v}" for k, v in (p.get("codes") or {}).items()))] for p in phases]
        out.append(table(["phase", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "status codes"], body,
                         numeric=range(1, 8), caption="load phases of the monitoring replay"))
        items = [(f"{p.get('phase')} {q}", p.get(f"{q}_ms")) for p in phases for q in ("p50", "p90", "p99")]
        out.append(svg.hbars(items, title="latency percentiles per phase (ms)", value_fmt="{:.2f} ms", width=900))
    if dep:
        out.append(kv([("predictor", dep.get("url")), ("model", f"{dep.get('model')} v{dep.get('version')}"), ("pid", str(dep.get("pid")))]))
    return "".join(out)


# ---------------------------------------------------------------- drift
def _thresholds(series: dict[str, Any] | None) -> dict[str, float]:
    if series and isinstance(series.get("thresholds"), dict):
        return {**DEFAULT_THRESHOLDS, **series["thresholds"]}
    try:
        from kindml.monitoring.rules import profile_values

        v = profile_values("local")
        return {"psi": float(v["feature_psi"]), "prediction_psi": float(v["prediction_psi"]),
                "ks_min": float(v["feature_ks_min"]), "ks_c_alpha": float(v["ks_c_alpha"])}
    except Exception:
        return dict(DEFAULT_THRESHOLDS)


def _last(values: list[Any] | None) -> float | None:
    for v in reversed(values or []):
        if svg.finite(v):
            return float(v)
    return None


def _max(values: list[Any] | None) -> float | None:
    vals = [float(v) for v in values or [] if svg.finite(v)]
    return max(vals) if vals else None


def drift(data: RunData) -> str:
    mon = data.get("monitor") or {}
    d = mon.get("drift") or data.summary.get("drift")
    if not d:
        return why_missing(data, "monitor", "drift measurements")
    series = d.get("series") if isinstance(d.get("series"), dict) else None
    th = _thresholds(series)
    max_psi: dict[str, float] = d.get("max_psi") or {}
    feats = series.get("features", {}) if series else {}
    fired = {(a.get("labels") or {}).get("feature") for a in d.get("alerts_fired") or [] if a.get("alertname") == "KindmlFeatureDrift"}
    shifted = {(a.get("labels") or {}).get("feature") for a in d.get("alerts_fired") or [] if a.get("alertname") == "KindmlFeatureShift"}
    out = [note(f"Live traffic drift severity {num(d.get('severity'))}; PSI above {th['psi']:g} for 10 s fires KindmlFeatureDrift, "
                f"binned KS above max({th['ks_min']:g}, {th['ks_c_alpha']:g}/√n) fires KindmlFeatureShift.", "info")]
    names = sorted(set(max_psi) | set(feats))
    if names:
        body, classes = [], []
        for f in names:
            fs = feats.get(f, {})
            psi = max_psi.get(f, _max(fs.get("psi")))
            over = isinstance(psi, int | float) and psi > th["psi"]
            body.append([esc(f), num(psi), num(_max(fs.get("js"))), num(_max(fs.get("ks"))),
                         " ".join([badge("fired")] * (f in fired) + [badge("shift")] * (f in shifted) + [badge("drift")] * (over and f not in fired))
                         or badge("ok")])
            classes.append("bad" if over or f in fired else "")
        out.append(svg.hbars([(f, max_psi.get(f, _max(feats.get(f, {}).get("psi")))) for f in names], title="max PSI per feature over the run",
                             threshold=th["psi"], threshold_label=f"alert threshold {th['psi']:g}", width=900))
        out.append(table(["feature", "max PSI", "max JS (bits)", "max KS", "alert"], body, classes, numeric=[1, 2, 3],
                         caption="drift per feature vs the training reference (fired: KindmlFeatureDrift fired; shift: KindmlFeatureShift fired; "
                                 "drift: above the PSI threshold, no drift alert fired yet when the stage stopped watching)"))
    pred = d.get("prediction_psi")
    if pred is not None:
        out.append(kv([("prediction (score) PSI at the end", num(pred)), ("threshold", th["prediction_psi"])]))
    if series and series.get("t_s"):
        t = series["t_s"]
        charts = []
        for f in sorted(feats):
            fs = feats[f]
            ss = [svg.Series(m.upper(), t, fs[m], METHOD_COLORS[m], dash=(m != "psi")) for m in ("psi", "js", "ks") if m in fs]
            charts.append(svg.line_chart(ss, title=f, x_label="seconds", y_label="drift", width=420, height=220,
                                         hlines=[svg.HLine(th["psi"], f"PSI {th['psi']:g}")]))
        ps = series.get("prediction") or {}
        if ps:
            charts.append(svg.line_chart([svg.Series(m.upper(), t, ps[m], METHOD_COLORS[m], dash=(m != "psi")) for m in ("psi", "js", "ks") if m in ps],
                                         title="prediction (score)", x_label="seconds", y_label="drift", width=420, height=220,
                                         hlines=[svg.HLine(th["prediction_psi"], f"PSI {th['prediction_psi']:g}")]))
        out.append(f"<h3>drift over time (sampled every {num(series.get('step_s'))} s from Prometheus since {esc(series.get('start'))})</h3>")
        out.append(grid(charts, "grid three"))
    else:
        out.append(note("Drift over time was not recorded for this run (runs of an older kindml keep the maximum only).", "info"))
    return "".join(out)


# ---------------------------------------------------------------- alerts
def alerts(data: RunData) -> str:
    mon = data.get("monitor") or {}
    d = mon.get("drift") or data.summary.get("drift")
    if not d:
        return why_missing(data, "monitor", "alert record")
    fired = d.get("alerts_fired") or []
    if not fired:
        return note(f"No alert fired during the {num(mon.get('observed_seconds'))} s the local Prometheus watched the predictor."
                    if mon.get("observed_seconds") else "No alert fired.", "ok")
    drift_names = {"KindmlFeatureDrift", "KindmlPredictionDrift"}
    out = []
    if any(a.get("alertname") in drift_names for a in fired):
        out.append(note("Drift alerts fired: live traffic no longer looks like the training data. Retrain (`kindml monitor watch` does it on alert).", "warn"))
    body = []
    for a in fired:
        labels = a.get("labels") or {}
        try:
            value = num(float(a.get("value")))
        except (TypeError, ValueError):
            value = esc(a.get("value"))
        body.append([esc(a.get("alertname")), esc(labels.get("feature", "-")), esc(labels.get("severity", "-")),
                     esc(f"{labels.get('model', '')} v{labels.get('version', '')}"), esc(a.get("first_seen")), value])
    out.append(table(["alert", "feature", "severity", "model", "first seen (firing)", "value"], body, numeric=[5]))
    return "".join(out)


# ---------------------------------------------------------------- benchmarks
def benchmarks(data: RunData) -> str:
    doc = data.benchmark
    if not doc:
        return note("No benchmark results found (run `kindml bench` or `make bench`; the newest benchmarks/results/*.json is shown).", "info")
    mach = doc.get("machine") or {}
    out = [f'<p class="muted">{esc(data.benchmark_path.name if data.benchmark_path else "")} · suite {esc(doc.get("suite"))} · '
           f'{esc(mach.get("cpu_model"))} · {esc(mach.get("logical_cpus"))} logical CPUs · {esc(doc.get("device") or mach.get("device"))} · '
           f'onnxruntime {esc(mach.get("onnxruntime_version"))} · {esc(doc.get("created"))}</p>']
    results = [r for r in doc.get("results") or [] if isinstance(r, dict)]
    head = ["model", "variant", "provider", "batch", "p50 ms", "p99 ms", "throughput /s", "speedup vs fp32", "quality"]

    def row(r: dict[str, Any]) -> list[str]:
        return [esc(r.get("model")), esc(r.get("variant")), esc(r.get("provider")), num(r.get("batch")), num(r.get("p50_ms"), 4),
                num(r.get("p99_ms"), 4), num(r.get("throughput_per_s"), 1), num(r.get("speedup_vs_fp32"), 3), esc(quality_text(r.get("quality")))]

    best: dict[str, dict[str, Any]] = {}  # per model: the highest throughput of any variant and batch
    for r in results:
        t = r.get("throughput_per_s")
        if svg.finite(t) and (r.get("model") not in best or t > best[str(r.get("model"))]["throughput_per_s"]):
            best[str(r.get("model"))] = r
    if best:
        out.append(table(head, [row(r) for r in best.values()], numeric=range(3, 8), caption="fastest variant per model (highest throughput)"))
    out.append(f"<details><summary>all {len(results)} results</summary>{table(head, [row(r) for r in results], numeric=range(3, 8))}</details>")
    return "".join(out)


def quality_text(q: Any) -> str:
    """``roc_auc 0.9133 (Δ -0.0001)`` from a benchmark quality record (the metric that has a ``_delta``)."""
    if not isinstance(q, dict):
        return num(q) if q is not None else "-"
    for k, v in q.items():
        if f"{k}_delta" in q and svg.finite(v):
            return f"{k} {num(v)} (Δ {num(q[f'{k}_delta'])})"
    return short(", ".join(f"{k}={num(v)}" for k, v in q.items() if svg.finite(v)), 60)


# ---------------------------------------------------------------- model quality (delayed labels)
def model_quality(data: RunData) -> str:
    """Realised quality on delayed labels (outcomes joined to logged predictions) against the holdout score, over time."""
    mon = data.get("monitor") or {}
    q = mon.get("quality") or data.summary.get("quality")
    if not q:
        return why_missing(data, "monitor", "realised-quality measurements")
    fb = q.get("feedback")
    if not fb:
        return note(q.get("note") or "No delayed labels were sent during this run.", "info")
    realised: dict[str, float] = q.get("realised") or {}
    reference: dict[str, float] = q.get("reference") or {}
    fired = q.get("quality_alert_fired")
    out = []
    shift = q.get("concept_shift")
    if fired and fb.get("actuals"):
        out.append(note("KindmlErrorDegraded fired: the realised error of the batch forecasts on the actuals that arrived later rose "
                        "above the version's holdout error (`kindml monitor watch` retrains on it).", "warn"))
    elif fired:
        out.append(note("KindmlQualityDegraded fired: realised quality on labelled outcomes fell below the version's holdout score "
                        "(`kindml monitor watch` retrains on it).", "warn"))
    elif shift:
        out.append(note(f"Concept shift {num(shift)} was replayed but no quality alert fired while the stage watched.", "info"))
    else:
        out.append(note("No quality alert fired: realised quality stayed near the holdout score.", "ok"))
    out.append(cards([
        ("outcomes joined", num(fb.get("joined")), f"of {num(fb.get('sent'))} sent" if fb.get("sent") is not None else ""),
        ("unknown ids", num(len(fb.get("unknown") or [])) if isinstance(fb.get("unknown"), list) else num(fb.get("unknown")), ""),
        ("concept shift", num(shift), "a level shock of the actuals" if fb.get("actuals") else "label relationship change of the late traffic"),
        ("quality alert", "fired" if fired else "no", ""),
    ]))
    worst = (q.get("actuals") or {}).get("worst_series") or []
    if worst:
        out.append(table(["series", "WAPE", "MAE", "sMAPE", "points"],
                         [[esc(w.get("entity")), num(w.get("wape")), num(w.get("mae")), num(w.get("smape")), num(w.get("points"))] for w in worst],
                         numeric=[1, 2, 3, 4], caption="the series with the highest realised WAPE on the actuals (kindml_series_error exports them)"))
    body = []
    for key in sorted(realised):
        variant, _, metric = key.partition(":")
        ref = reference.get(metric)
        delta = realised[key] - ref if isinstance(ref, int | float) else None
        body.append([esc(variant or "-"), esc(metric), num(realised[key]), num(ref), num(delta)])
    if body:
        out.append(table(["variant", "metric", "realised (newest window)", "holdout (evaluate)", "difference"], body, numeric=[2, 3, 4],
                         caption="realised quality on the labelled window at the end of the run vs the offline holdout score"))
    series = (q.get("series") or {}).get("series") or {}
    charts = []
    for metric in sorted({k.partition(":")[2] for k in series}):
        ss = [svg.Series(k.partition(":")[0] or "-", [p[0] for p in pts], [p[1] for p in pts], svg.PALETTE[i % len(svg.PALETTE)])
              for i, (k, pts) in enumerate(sorted(series.items())) if k.partition(":")[2] == metric]
        ref = reference.get(metric)
        charts.append(svg.line_chart(ss, title=metric, x_label="seconds", y_label=metric, width=420, height=220,
                                     hlines=[svg.HLine(float(ref), "holdout")] if isinstance(ref, int | float) else []))
    if charts:
        out.append(f"<h3>realised quality over time (from Prometheus, every {num((q.get('series') or {}).get('step_s'))} s)</h3>")
        out.append(grid(charts, "grid three"))
    return "".join(out)


# ---------------------------------------------------------------- experiment (A/B, canary, shadow)
def experiment(data: RunData) -> str:
    """The champion/challenger experiment the run started or fed: design, assignment, metric per variant, path, decision."""
    mon = data.get("monitor") or {}
    exp = mon.get("experiment") or data.summary.get("experiment")
    if not exp:
        reg = data.get("registered") or {}
        if reg.get("in_experiment"):
            return why_missing(data, "monitor", "experiment record")
        return note("No experiment in this run (the register stage promoted directly; `registry.promotion: experiment` or "
                    "`kindml experiment start` runs one).", "info")
    dec = exp.get("decision") or {}
    action = dec.get("action", "keep_running")
    kind = {"promote": "ok", "rollback": "error", "stop_for_futility": "info"}.get(action, "info")
    out = [note(f"Decision: {action.replace('_', ' ')}. {dec.get('reason', '')}", kind)]
    if exp.get("applied"):
        out.append(note(f"Applied: {exp['applied'].get('message')}", "ok"))
    per_arm = exp.get("outcomes_per_arm") or {}
    out.append(cards([
        ("mode", esc(exp.get("mode")), f"challenger share {pct(exp.get('split'))}"),
        ("champion", f"v{esc((exp.get('champion') or {}).get('version'))}", f"{num(per_arm.get('champion'))} labelled outcomes"),
        ("challenger", f"v{esc((exp.get('challenger') or {}).get('version'))}", f"{num(per_arm.get('challenger'))} labelled outcomes"),
        ("metric", esc(exp.get("metric")), ""),
    ]))
    design = exp.get("design") or {}
    if exp.get("design_text"):
        out.append(f"<pre>{esc(exp['design_text'])}</pre>")
    path = exp.get("path") or []
    cur = exp.get("current") or {}
    rates = cur.get("rate") or [None, None]
    ci = cur.get("ci") or (path[-1].get("ci") if path else None)
    out.append(table(["variant", "labelled outcomes", exp.get("metric") or "rate", "difference (challenger - champion)", "interval"],
                     [["champion", num(per_arm.get("champion")), num(rates[0]), "", ""],
                      ["challenger", num(per_arm.get("challenger")), num(rates[1]), num(cur.get("diff")),
                       esc(f"[{num(ci[0])}, {num(ci[1])}]") if ci else "-"]],
                     numeric=[1, 2, 3], caption="the metric per variant now; the interval is valid across all looks (repeated confidence interval)"))
    if path:
        xs = [float(lk.get("info", 0.0)) for lk in path]
        chart = svg.line_chart([svg.Series("Z", xs, [lk.get("z") for lk in path], svg.PALETTE[0], markers=True),
                                svg.Series("upper boundary", xs, [lk.get("boundary") for lk in path], svg.PALETTE[3], dash=True),
                                svg.Series("lower boundary", xs, [-float(lk["boundary"]) if svg.finite(lk.get("boundary")) else None for lk in path],
                                           svg.PALETTE[3], dash=True)],
                               title="sequential test: Z at each formal look vs the stopping boundaries", x_label="information fraction",
                               y_label="Z", width=640, height=260)
        out.append(chart)
        out.append(table(["look", "information", "n champion", "n challenger", "Z", "boundary", "action"],
                         [[num(lk.get("look")), num(lk.get("info")), num((lk.get("n") or [None, None])[0]), num((lk.get("n") or [None, None])[1]),
                           num(lk.get("z")), num(lk.get("boundary")), esc(lk.get("action"))] for lk in path[-20:]],
                         numeric=range(0, 6), caption="the newest formal looks"))
    elif design:
        out.append(note(f"No formal look yet: the first needs {num(exp.get('min_samples') or 200)} labelled outcomes per arm; the design "
                        f"needs {num(design.get('budget_total'))} in all.", "info"))
    return "".join(out)
