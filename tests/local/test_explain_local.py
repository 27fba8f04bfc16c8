"""Explanations of real kits built in the test (no pipeline run): the fraud kit (engineered-feature assembler, MLP
exported to ONNX), the text kit (its real tokenizer and context features, a tiny encoder in place of MiniLM), the
export stage's explain step, and the importance registered with a version and read back for the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kindml.explain.background import load_background
from kindml.explain.explainer import Explainer
from kindml.explain.importance import load_importance, registered_importance
from kindml.explain.serve import explain_payload
from kindml.explain.spec import BACKGROUND_FILE, IMPORTANCE_FILE
from kindml.model.export import export_onnx, onnx_session, run_onnx
from kindml.serving.signature import RequestError
from kindml.stages.export import explain_step

pytestmark = pytest.mark.local

# ------------------------------------------------------------------ fraud


def fraud_frame(n: int, seed: int) -> pd.DataFrame:
    from kindml.pipelines.fraud.aggregates import ACCOUNT_FEATURES, MERCHANT_FEATURES
    from kindml.pipelines.fraud.schema import CATEGORIES, CHANNELS, COUNTRIES

    rng = np.random.default_rng(seed)
    df: dict[str, Any] = {
        "transaction_id": [f"t{seed}-{i}" for i in range(n)], "account_id": rng.integers(1, 500, n), "merchant_id": rng.integers(1, 80, n),
        "amount": np.round(rng.lognormal(3.5, 1.2, n), 2), "merchant_category": rng.choice(CATEGORIES, n), "channel": rng.choice(CHANNELS, n),
        "country": rng.choice(COUNTRIES, n), "is_fraud": (rng.uniform(size=n) < 0.1).astype(np.int64),
        "event_timestamp": pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 30 * 86400, n), unit="s"),
        "home_country": rng.choice([*COUNTRIES, None], n),
    }
    for f in (*ACCOUNT_FEATURES, *MERCHANT_FEATURES):
        v = rng.gamma(2.0, 20.0, n)
        v[rng.uniform(size=n) < 0.1] = np.nan  # unknown accounts / merchants
        df[f] = v
    for f in ("online_share_30d", "night_share_30d", "foreign_share_30d", "risky_share_30d"):
        df[f] = rng.uniform(0, 1, n)
    return pd.DataFrame(df)


@pytest.fixture(scope="module")
def fraud_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    from kindml.pipelines.fraud.model import FraudKit

    folder = tmp_path_factory.mktemp("fraud")
    reference, holdout = fraud_frame(2_000, 0), fraud_frame(600, 1)
    kit = FraudKit("fraud_model_v1")
    kit.fit(reference)
    kit.save(folder)
    torch.manual_seed(0)
    model = kit.recipe.build({"width": 32, "dropout": 0.0}, kit.meta())
    export_onnx(kit.onnx_module(model), folder / "model.onnx", 18)
    summary = explain_step(kit, folder / "model.onnx", reference, holdout, folder, seed=42)
    return {"folder": folder, "kit": kit, "summary": summary, "holdout": holdout, "session": onnx_session(folder / "model.onnx")}


def test_export_step_stores_background_and_importance_over_request_fields_and_features(fraud_bundle: dict[str, Any]) -> None:
    from kindml.pipelines.fraud.preprocess import REQUEST_FIELDS
    from kindml.pipelines.fraud.serving import FEATURE_FIELDS

    folder, summary = fraud_bundle["folder"], fraud_bundle["summary"]
    assert summary["background_rows"] == 100 and summary["importance"] == IMPORTANCE_FILE and len(summary["top"]) == 5
    bg = load_background(folder)
    assert bg is not None and {*REQUEST_FIELDS, *FEATURE_FIELDS, "home_country"} == set(bg) and len(bg["amount"]) == 100
    assert set(np.unique(bg["hour"])) <= set(range(24))
    doc = load_importance(folder / IMPORTANCE_FILE)
    names = [p["name"] for p in doc["players"]]
    assert len(names) == 26 and {"amount", "merchant_category", "channel", "country", "hour", "home_country"} <= set(names)
    assert doc["rows"] == 200 and doc["target"] == "score" and doc["model_rows"] > 0
    assert doc["players"][0]["mean_abs"] > 0 and sum(p["share"] for p in doc["players"]) == pytest.approx(1.0, abs=1e-3)


def test_fraud_request_explanations_add_up_to_the_served_score(fraud_bundle: dict[str, Any]) -> None:
    """Rows carrying their own features (no Feast lookup): the explained prediction is the predictor's score,
    the attributions add up to it from the background's mean score, and the same request gives the same answer."""
    from kindml.pipelines.fraud.serving import FEATURE_FIELDS

    kit, session = fraud_bundle["kit"], fraud_bundle["session"]
    explainer = Explainer.from_bundle(fraud_bundle["folder"], kit, session)
    rows = fraud_bundle["holdout"].head(3)
    instances = kit.signature().instances(rows)
    for inst, (_, r) in zip(instances, rows.iterrows(), strict=True):
        inst.update({f: (None if pd.isna(r[f]) else float(r[f])) for f in FEATURE_FIELDS})
        inst["home_country"] = r["home_country"]
    body = {"instances": instances}
    out = explain_payload(body, kit.signature(), explainer)
    parsed = kit.signature().parse_v1(instances)
    served = kit.probabilities(run_onnx(session, kit.feeds(parsed.columns)))
    assert len(out["explanations"]) == 3
    for e, score in zip(out["explanations"], served, strict=True):
        assert e["prediction"] == pytest.approx(float(score), abs=1e-6)
        assert sum(e["attributions"].values()) == pytest.approx(e["prediction"] - e["base_value"], abs=1e-4)
        assert len(e["attributions"]) == 26 and e["method"] == "Shapley value sampling (10 orders)"
        assert e["model_rows"] == (10 * 26 + 3) * 100
        assert set(e["inputs"]) == set(e["attributions"]) and isinstance(e["inputs"]["hour"], float)
    assert explain_payload(body, kit.signature(), explainer) == out
    json.dumps(out)


def test_fraud_rows_without_features_are_explained_like_the_predictor_scores_them(fraud_bundle: dict[str, Any]) -> None:
    kit, session = fraud_bundle["kit"], fraud_bundle["session"]
    explainer = Explainer.from_bundle(fraud_bundle["folder"], kit, session)
    inst = kit.signature().instances(fraud_bundle["holdout"].head(1))
    [e] = explain_payload({"instances": inst}, kit.signature(), explainer, features=None)["explanations"]
    parsed = kit.signature().parse_v1(inst)
    assert e["prediction"] == pytest.approx(float(kit.probabilities(run_onnx(session, kit.feeds(parsed.columns)))[0]), abs=1e-6)
    assert e["inputs"]["txn_count_30d"] is None  # not looked up: the assembler's fill
    with pytest.raises(RequestError, match="instances\\[0\\].channel must be one of"):
        explain_payload({"instances": [{**inst[0], "channel": "fax"}]}, kit.signature(), explainer)


# ------------------------------------------------------------------ text


def tiny_encoder(kit: Any, n_context: int, word: str, intent: str) -> Any:
    """Mean-pooled token embeddings (+ context) → intents: only ``word`` moves the logits, towards ``intent``."""
    import torch

    from kindml.pipelines.text.model import pooled  # noqa: F401 (the real model pools the same way)

    word_id = kit.tokenizer.token_to_id(word)
    assert word_id is not None, f"{word!r} must be one token of the vocabulary"
    classes = kit.class_names

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(kit.tokenizer.get_vocab_size(), 4)
            self.head = torch.nn.Linear(4 + n_context, len(classes))
            with torch.no_grad():
                self.emb.weight.zero_()
                self.emb.weight[word_id, 0] = 8.0
                self.head.weight.zero_()
                self.head.bias.zero_()
                self.head.weight[classes.index(intent), 0] = 1.0
                self.head.weight[:, 4] = 0.05  # the first context feature matters a little

        def forward(self, input_ids: Any, attention_mask: Any, context: Any) -> Any:
            mask = attention_mask.unsqueeze(-1).to(torch.float32)
            emb = (self.emb(input_ids) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.softmax(self.head(torch.cat([emb, context], dim=1)), dim=1), emb

    return Tiny().eval()


def ticket_frame(n: int, seed: int) -> pd.DataFrame:
    from kindml.pipelines.text.data import CHANNELS, PLANS
    from kindml.pipelines.text.features import NUMERIC_FEATURES

    rng = np.random.default_rng(seed)
    texts = ["I want a refund for my order", "where is my parcel", "I forgot my password again", "please refund the duplicate charge",
             "my invoice looks wrong", "the app crashes on start"]
    df: dict[str, Any] = {"ticket_id": [f"k{i}" for i in range(n)], "customer_id": rng.integers(1, 100, n), "text": rng.choice(texts, n),
                          "channel": rng.choice(CHANNELS, n), "plan": rng.choice(PLANS, n)}
    for f in NUMERIC_FEATURES:
        df[f] = rng.gamma(2.0, 3.0, n)
    return pd.DataFrame(df)


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from kindml.model.kit import OnnxSpec
    from kindml.pipelines.text.data import INTENTS, PLANS
    from kindml.pipelines.text.features import NUMERIC_FEATURES
    from kindml.pipelines.text.model import SCHEMA_VERSION, TextKit, tokenize

    folder = tmp_path_factory.mktemp("text")
    kit = TextKit()
    k = len(NUMERIC_FEATURES) + len(PLANS) + 1
    kit.state = {"schema_version": SCHEMA_VERSION, "classes": list(INTENTS), "plans": list(PLANS), "max_tokens": 64,
                 "fill": {f: 0.0 for f in NUMERIC_FEATURES}, "context_mean": [0.0] * k, "context_std": [1.0] * k,
                 "pca_mean": [0.0] * 4, "pca_components": [[1.0, 0.0, 0.0, 0.0]]}
    kit.save(folder)
    kit = TextKit().load(folder)
    module = tiny_encoder(kit, k, "password", "login_problem")
    example = {**tokenize(kit.tokenizer, ["where is my parcel", "refund please"], pad_to=8), "context": np.zeros((2, k), dtype=np.float32)}
    export_onnx(OnnxSpec(module, example, ["input_ids", "attention_mask", "context"], ["probabilities", "embedding"],
                         dynamic_axes={"input_ids": {1: "sequence"}, "attention_mask": {1: "sequence"}}, exporter="torchscript"),
                folder / "model.onnx", 18)
    summary = explain_step(kit, folder / "model.onnx", ticket_frame(300, 0), ticket_frame(100, 1), folder, seed=42)
    return {"folder": folder, "kit": kit, "summary": summary, "session": onnx_session(folder / "model.onnx")}


def test_text_explanations_are_word_attributions_of_the_predicted_intent(text_bundle: dict[str, Any]) -> None:
    kit, session = text_bundle["kit"], text_bundle["session"]
    explainer = Explainer.from_bundle(text_bundle["folder"], kit, session)
    sig = kit.signature()
    out = explain_payload({"instances": [{"text": "Hello, I forgot my password today", "channel": "chat"}]}, sig, explainer)
    [e] = out["explanations"]
    assert e["players"] == "words" and e["target"] == "login_problem"
    words = [a["word"] for a in e["attributions"]]
    assert words == ["Hello,", "I", "forgot", "my", "password", "today"]
    best = max(e["attributions"], key=lambda a: a["attribution"])
    assert best["word"] == "password" and best["attribution"] > 0.05
    assert sum(a["attribution"] for a in e["attributions"]) == pytest.approx(e["prediction"] - e["base_value"], abs=1e-5)
    assert e["model_rows"] == 6 * 6 + 3  # one masked text per coalition
    # another intent on request: the same words, that class's probability
    [other] = explain_payload({"instances": [{"text": "Hello, I forgot my password today"}], "target": "refund_request"}, sig,
                              explainer)["explanations"]
    assert other["target"] == "refund_request" and next(a for a in other["attributions"] if a["word"] == "password")["attribution"] < 0
    with pytest.raises(RequestError, match='"target" must be one of billing_question'):
        explain_payload({"instances": [{"text": "refund"}], "target": "nonsense"}, sig, explainer)
    with pytest.raises(RequestError, match="instances\\[0\\].text is empty"):
        explain_payload({"instances": [{"text": "   "}]}, sig, explainer)
    long = explain_payload({"instances": [{"text": " ".join(["password"] * 200)}]}, sig, explainer)["explanations"][0]
    assert len(long["attributions"]) <= 32


def test_text_global_importance_weighs_the_text_against_customer_features(text_bundle: dict[str, Any]) -> None:
    doc = load_importance(text_bundle["folder"] / IMPORTANCE_FILE)
    names = [p["name"] for p in doc["players"]]
    assert set(names) == {"text", "plan", "account_age_days", "ticket_history", "recent_intents"}
    assert names[0] == "text"  # only the text (and a little of one context feature) moves this model
    assert doc["players"][-1]["mean_abs"] == pytest.approx(0.0, abs=1e-6)  # the plan is not an input of the tiny model's logits
    assert doc["rows"] == 40 and doc["target"] == "probability of the predicted class"
    assert (text_bundle["folder"] / BACKGROUND_FILE).is_file()


# ------------------------------------------------------------------ the registry and the report


def test_importance_travels_with_the_registered_version_and_into_the_report(fraud_bundle: dict[str, Any], tmp_path: Path) -> None:
    from kindml import registry
    from kindml.report.collect import collect
    from kindml.report.render import render_html

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = fraud_bundle["folder"]
    with registry.mlflow_env(uri) as mlflow:
        exp = registry.ensure_experiment(mlflow, "explain-test", tmp_path / "artifacts")
        with mlflow.start_run(experiment_id=exp) as run:
            run_id = run.info.run_id
    extra = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "model.onnx"]
    old = registry.register_onnx(uri, run_id, "fraud-detector", folder / "model.onnx", [folder / "preprocessing.json"], {}, "v1", True, "champion")
    champ = registry.register_onnx(uri, run_id, "fraud-detector", folder / "model.onnx", extra, {}, "v2", True, "champion")
    assert registered_importance(uri, "fraud-detector", old.version) is None  # registered before explanations
    assert registered_importance(uri, "fraud-detector", champ.version) == load_importance(folder / IMPORTANCE_FILE)
    new = registry.register_onnx(uri, run_id, "fraud-detector", folder / "model.onnx", extra, {}, "v3", False, "champion")
    # a run that registered v3 (not promoted) after being gated against the champion v2
    run_dir = tmp_path / "runs" / "r1"
    art = run_dir / "kfp" / "root" / "export" / "onnx_model"
    art.mkdir(parents=True)
    (art / IMPORTANCE_FILE).write_text((folder / IMPORTANCE_FILE).read_text())
    (run_dir / "kfp" / "root" / "evaluate" / "evaluation").mkdir(parents=True)
    (run_dir / "kfp" / "root" / "evaluate" / "evaluation" / "gate.json").write_text(json.dumps({"promote": False, "champion_version": champ.version}))
    (run_dir / "summary.json").write_text(json.dumps({"run_id": "r1", "status": "succeeded", "stages": {},
                                                      "model": {"name": "fraud-detector", "version": new.version}}))
    data = collect(run_dir, tracking_uri=uri)
    assert data.importance_other is not None and data.importance_other["version"] == champ.version
    page = render_html(data)
    sec = page.split('<section id="importance">')[1].split("</section>")[0]
    assert f"v{new.version}" in sec and f"v{champ.version} (champion)" in sec and "amount" in sec
