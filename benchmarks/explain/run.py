"""Explanation latency (issue 14, part 4): one ``:explain`` request per workload, and the export's global importance.

    .venv/bin/python benchmarks/explain/run.py            # ~3-5 min on 2 cores (exports MiniLM once); writes results.json + .md here
    .venv/bin/python benchmarks/explain/run.py --quick    # fewer repeats, prints only

Kits and models are built on the spot (no pipeline run; seeded): the fraud kit on the
capstone's generated transactions with the Feast views' aggregates joined point-in-time
and its MLP trained in plain PyTorch (the benchmark suite's recipe); a tabular kit
(``kindml init``'s shape) on generated readings with a learnable label; the text kit
with the **real** all-MiniLM-L6-v2 encoder (frozen) and a head trained on the capstone's
generated tickets. Each is exported to ONNX as the export stage does.

Measured in one process, one ONNX Runtime thread, side by side:
- ``accuracy``: the sampling error of the per-request attributions per budget (orders),
  against a many-order estimate of the same rows (full run only);
- ``cold``: the first explanation of the process (imports torch and captum);
- ``warm``: p50 / best of ``--repeats`` one-row ``:explain`` calls (``explain_payload``, the
  function the predictor calls), and one call with the maximum 5 rows;
- ``importance``: the export stage's global importance (its default budget per kit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def build_fraud(folder: Path) -> tuple[Any, pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """The capstone's data path (seeded generator, the Feast views' aggregates joined point-in-time), its kit and
    MLP trained with plain PyTorch (the benchmark suite's recipe, ~10 s)."""
    from kindml.model.export import export_onnx
    from kindml.model.kit import OnnxSpec, frame_columns
    from kindml.pipelines.fraud.bench import TRAIN_WORLD, joined_frame, split_frame, train_mlp
    from kindml.pipelines.fraud.model import FraudKit

    reference, holdout = split_frame(joined_frame(**TRAIN_WORLD))
    kit = FraudKit("fraud_model_v1")
    kit.fit(reference)
    kit.save(folder)
    x = kit.assembler.transform(frame_columns(reference))
    net = train_mlp(x, reference["is_fraud"].to_numpy(), kit.spec.mean, kit.spec.std)
    export_onnx(OnnxSpec(net, {"features": x[:2]}, ["features"], ["fraud_probability"]), folder / "model.onnx", 18)
    # requests: the holdout's most suspicious-looking rows first (fraud and not), as sent to :predict (features looked up
    # by the predictor; here the rows carry them, the "fully specified" form)
    rows = pd.concat([holdout[holdout["is_fraud"] == 1].head(3), holdout[holdout["is_fraud"] == 0].head(2)])
    return kit, reference, holdout, with_features(kit, rows)


def with_features(kit: Any, rows: pd.DataFrame) -> list[dict[str, Any]]:
    from kindml.pipelines.fraud.serving import FEATURE_FIELDS

    out = kit.signature().instances(rows)
    for inst, (_, r) in zip(out, rows.iterrows(), strict=True):
        inst.update({f: (None if pd.isna(r[f]) else float(r[f])) for f in FEATURE_FIELDS})
        inst["home_country"] = None if pd.isna(r["home_country"]) else str(r["home_country"])
    return out


def build_tabular(folder: Path) -> tuple[Any, pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """``kindml init``'s shape (3 numeric, 1 categorical, 2 aggregates), a label with signal, the MLP trained in plain PyTorch."""
    from kindml.config import KindmlConfig
    from kindml.model.export import export_onnx
    from kindml.model.kit import OnnxSpec, frame_columns
    from kindml.pipelines.fraud.bench import train_mlp
    from kindml.tabular import TabularWorkload

    class Sensors(TabularWorkload):
        name, task, model_name, event_table, label, row_id, entity = "sensors", "binary", "m", "readings", "failure", "reading_id", "machine_id"
        gate_metric = "roc_auc"
        numeric: ClassVar[dict[str, tuple[float, float]]] = {"temperature": (-40.0, 250.0), "vibration": (0.0, 60.0), "load": (0.0, 1.0)}
        categorical: ClassVar[dict[str, tuple[str, ...]]] = {"site": ("north", "south", "east")}
        aggregate = ("temperature", "vibration")

        def generate(self) -> Any:
            raise NotImplementedError

        def live(self, n: int, drift: float, stream: int) -> pd.DataFrame:
            raise NotImplementedError

    def frame(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        df = pd.DataFrame({"machine_id": rng.integers(1, 50, n), "temperature": rng.normal(80, 20, n), "vibration": rng.gamma(2, 3, n),
                           "load": rng.uniform(0, 1, n), "site": rng.choice(["north", "south", "east"], n),
                           "events_7d": rng.integers(1, 30, n).astype(float), "temperature_mean_7d": rng.normal(80, 5, n),
                           "vibration_mean_7d": rng.gamma(2, 3, n)})
        risk = 0.04 * (df["temperature"] - 80) + 0.3 * (df["vibration"] - df["vibration_mean_7d"]) + 2.0 * df["load"] + (df["site"] == "east")
        df["failure"] = (risk + rng.normal(0, 1, n) > 2.5).astype(np.int64)
        return df

    kit = Sensors(KindmlConfig()).model_kit()
    reference, holdout = frame(20_000, 0), frame(2_000, 1)
    kit.fit(reference)
    kit.save(folder)
    x = kit.feeds(frame_columns(reference))["features"]
    net = train_mlp(x, reference["failure"].to_numpy(), kit.state["mean"], kit.state["std"])
    export_onnx(OnnxSpec(net, {"features": x[:2]}, ["features"], ["probability"]), folder / "model.onnx", 18)
    # requests as sent to :predict; without a feature store here, the aggregates are unknown (the kit's fill)
    return kit, reference, holdout, kit.signature().instances(holdout.head(5))


def build_text(folder: Path) -> tuple[Any, pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """The text kit with the real all-MiniLM-L6-v2 (frozen) and a head trained on the capstone's generated tickets."""
    import torch

    from kindml.model.export import export_onnx
    from kindml.pipelines.text.data import build_world, generate_history
    from kindml.pipelines.text.features import customer_daily
    from kindml.pipelines.text.model import TextKit

    world = build_world(3, 400, 30, None)
    tickets = generate_history(world, 2_400).sort_values("event_timestamp", kind="stable")
    start = pd.Timestamp(world.start)
    daily = customer_daily(tickets, world.customers, start, world.days).sort_values("event_timestamp", kind="stable")
    tickets = pd.merge_asof(tickets, daily, on="event_timestamp", by="customer_id", direction="backward",
                            tolerance=pd.Timedelta(days=2)).reset_index(drop=True)  # the point-in-time join of the Feast view
    reference, holdout = tickets.iloc[:2_000], tickets.iloc[2_000:]
    kit = TextKit()
    kit.fit(reference)  # embeds every training text with MiniLM (arrays() reuses them)
    kit.save(folder)
    a = kit.arrays(reference)
    y = torch.from_numpy(kit.labels(reference))
    torch.manual_seed(0)
    head = kit.recipe.build({"hidden": 128, "dropout": 0.0}, kit.meta())
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    emb, ctx = torch.from_numpy(a["embedding"]), torch.from_numpy(a["context"])
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(emb, ctx), y)
        loss.backward()
        opt.step()
    head.eval()
    export_onnx(kit.onnx_module(head), folder / "model.onnx", 18)
    instances = [{"text": str(t), "channel": "chat"} for t in holdout["text"].head(5)]
    return TextKit().load(folder), reference, holdout, instances


def timed(fn: Any, repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"p50_ms": statistics.median(times) * 1e3, "best_ms": min(times) * 1e3, "repeats": repeats}


def accuracy(kit: Any, session: Any, background: Any, spec: Any, sig: Any, instances: list[dict[str, Any]], budgets: list[int],
             reference_orders: int, rows: int = 3, seeds: int = 3) -> list[dict[str, Any]]:
    """Sampling error per budget: attributions with ``n`` orders (several seeds) vs a ``reference_orders`` estimate of the
    same row: the relative L1 error (sum |error| / sum |reference|) and how often the top 3 players are the same set."""
    import dataclasses

    from kindml.explain.explainer import Explainer

    def values(e: dict[str, Any]) -> dict[str, float]:
        a = e["attributions"]
        return {f"{i}:{x['word']}": x["attribution"] for i, x in enumerate(a)} if isinstance(a, list) else dict(a)

    out = []
    refs = []
    for inst in instances[:rows]:
        cols = sig.parse_v1([inst]).columns
        ref = values(Explainer(kit, session, background, dataclasses.replace(spec, samples=reference_orders), seed=999).explain(cols, 1)[0])
        refs.append((cols, ref))
    for n in budgets:
        errors, agree = [], []
        for cols, ref in refs:
            w = np.array(list(ref.values()))
            top = set(sorted(ref, key=lambda k: -abs(ref[k]))[:3])
            for seed in range(seeds):
                got = values(Explainer(kit, session, background, dataclasses.replace(spec, samples=n), seed=seed).explain(cols, 1)[0])
                errors.append(float(np.abs(np.array([got[k] for k in ref]) - w).sum() / max(np.abs(w).sum(), 1e-12)))
                agree.append(set(sorted(got, key=lambda k: -abs(got[k]))[:3]) == top)
        out.append({"orders": n, "median_relative_l1_error": statistics.median(errors), "top3_agreement": sum(agree) / len(agree),
                    "rows": len(refs), "seeds": seeds, "reference_orders": reference_orders})
    return out


def measure(name: str, build: Any, repeats: int, cold: bool, accuracy_budgets: list[int] | None = None,
            reference_orders: int = 256) -> dict[str, Any]:
    from kindml.explain.explainer import Explainer
    from kindml.explain.importance import global_importance
    from kindml.explain.serve import explain_payload
    from kindml.model.export import onnx_session
    from kindml.model.kit import frame_columns

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kit, reference, holdout, instances = build(folder)
        from kindml.explain.background import sample_background, save_background

        spec = kit.explanation()
        save_background(sample_background(spec, reference, 42), folder)
        session = onnx_session(folder / "model.onnx", threads=1)
        explainer = Explainer.from_bundle(folder, kit, session)
        sig = kit.signature()
        out: dict[str, Any] = {"workload": name}
        t0 = time.perf_counter()
        first = explain_payload({"instances": instances[:1]}, sig, explainer)
        if cold:
            out["cold_first_explanation_ms"] = (time.perf_counter() - t0) * 1e3
        e = first["explanations"][0]
        out |= {"players": len(e["attributions"]), "model_rows_per_row": e["model_rows"], "method": e["method"]}
        out["one_row"] = timed(lambda: explain_payload({"instances": instances[:1]}, sig, explainer), repeats)
        out["five_rows"] = timed(lambda: explain_payload({"instances": instances[:5]}, sig, explainer), max(1, repeats // 3))
        scored = timed(lambda: run_predict(kit, session, sig, instances[:1]), repeats)
        out["predict_one_row_p50_ms"] = scored["p50_ms"]
        if accuracy_budgets:
            out["accuracy"] = accuracy(kit, session, explainer.background, spec, sig, instances, accuracy_budgets, reference_orders)
        t0 = time.perf_counter()
        doc = global_importance(Explainer(kit, session, frame_columns(sample_background(spec, reference, 42)), spec, seed=42), holdout, 42)
        out["importance"] = {"seconds": time.perf_counter() - t0, "rows": doc["rows"], "model_rows": doc["model_rows"],
                             "top": [p["name"] for p in doc["players"][:3]]}
    return out


def run_predict(kit: Any, session: Any, sig: Any, instances: list[dict[str, Any]]) -> Any:
    from kindml.model.export import run_onnx

    parsed = sig.parse_v1(instances)
    return kit.probabilities(run_onnx(session, kit.feeds(parsed.columns)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="fraud,tabular,text")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import torch

    torch.set_num_threads(1)
    repeats = 3 if args.quick else args.repeats
    builders = {"fraud": build_fraud, "tabular": build_tabular, "text": build_text}
    results = []
    for i, name in enumerate(n for n in args.only.split(",") if n):
        budgets = None if args.quick else ([4, 10, 16, 32] if name != "text" else [4, 6, 10])
        r = measure(name, builders[name], repeats if name != "text" else max(3, repeats // 3), cold=(i == 0), accuracy_budgets=budgets,
                    reference_orders=256 if name != "text" else 64)
        print(json.dumps(r), flush=True)
        results.append(r)
    doc = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "python": sys.version.split()[0], "machine": platform.machine(),
           "cpu": _cpu(), "load_average": list(os.getloadavg()), "torch_threads": 1, "ort_threads": 1, "results": results}
    if not args.quick:
        (HERE / "results.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        (HERE / "results.md").write_text(markdown(doc), encoding="utf-8")
    return 0


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Explanation latency ({doc['created']}, {doc['cpu']}, 1 thread, load average {doc['load_average'][0]:.1f})", "",
             "| workload | players | model rows per row | :explain 1 row p50 (best) | 5 rows p50 | predict 1 row p50 | global importance |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in doc["results"]:
        imp = r["importance"]
        lines.append(f"| {r['workload']} | {r['players']} | {r['model_rows_per_row']:,} | {r['one_row']['p50_ms']:.0f} ms "
                     f"({r['one_row']['best_ms']:.0f}) | {r['five_rows']['p50_ms']:.0f} ms | {r['predict_one_row_p50_ms']:.2f} ms | "
                     f"{imp['seconds']:.1f} s ({imp['rows']} rows, {imp['model_rows']:,} model rows) |")
    lines += ["", "Sampling error vs budget (orders per explained row; reference: the same row with 256 orders, text 64; "
              "3 rows × 3 seeds): median relative L1 error, and how often the top 3 inputs are the same set.", "",
              "| workload | orders | relative L1 error | top-3 agreement |", "|---|---:|---:|---:|"]
    for r in doc["results"]:
        for a in r.get("accuracy") or []:
            lines.append(f"| {r['workload']} | {a['orders']} | {a['median_relative_l1_error']:.3f} | {a['top3_agreement'] * 100:.0f} % |")
    cold = next((r for r in doc["results"] if "cold_first_explanation_ms" in r), None)
    if cold:
        lines += ["", f"First explanation of a process ({cold['workload']}, imports torch + captum): {cold['cold_first_explanation_ms'] / 1e3:.1f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
