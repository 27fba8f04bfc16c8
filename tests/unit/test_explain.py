"""Explanations (kindml.explain): the Shapley estimator on games with known answers, the real tabular kit behind a
hand-built linear ONNX model (attributions must equal weight × (x − background mean)), the :explain request
handling (4xx messages), the global importance file and its report section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from kindml.config import KindmlConfig
from kindml.explain.background import load_background, sample_background, save_background
from kindml.explain.explainer import MAX_ROWS, Explainer
from kindml.explain.importance import compare, global_importance, load_importance, save_importance
from kindml.explain.serve import explain_payload, load_explainer
from kindml.explain.shapley import (
    EXACT_PLAYERS,
    column_game,
    masked_text,
    shapley_values,
    spans,
    word_game,
)
from kindml.explain.spec import BACKGROUND_FILE, ExplainSpec, ExplanationError
from kindml.serving.signature import RequestError
from kindml.tabular import TabularKit, TabularWorkload

# ------------------------------------------------------------------ the estimator on known games


def _linear_game(m: int, n_bg: int, seed: int = 1) -> tuple[Any, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    names = [f"c{j}" for j in range(m)]
    w = rng.normal(size=m)
    bg = {n: rng.normal(size=n_bg) for n in names}
    row = {n: np.array([rng.normal()]) for n in names}

    def predict(cols: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([np.asarray(cols[n], dtype=float) for n in names]) @ w + 0.25

    return predict, w, bg, row, names


@pytest.mark.parametrize("m", [3, EXACT_PLAYERS + 5])
def test_linear_model_attributions_are_weight_times_distance_to_the_background_mean(m: int) -> None:
    """Exact (few players) and sampled (many): for f = w·x + b, φ_j = w_j (x_j − mean_bg x_j), whatever the budget."""
    predict, w, bg, row, names = _linear_game(m, 40)
    game, n_bg = column_game(predict, row, bg, [[n] for n in names])
    a = shapley_values(game, m, samples=1, seed=3)
    expected = np.array([w[j] * (row[n][0] - bg[n].mean()) for j, n in enumerate(names)])
    np.testing.assert_allclose(a.values, expected, atol=1e-6)
    assert a.prediction == pytest.approx(float(predict(row)[0]))
    assert a.base_value == pytest.approx(float(predict(bg).mean()))
    assert n_bg == 40 and a.coalitions >= m + 1


def test_product_game_matches_the_shapley_formula() -> None:
    """f = x1·x2 (interventional, background rows kept whole): φ1 = ½[(x1 b̄2 − mean(b1 b2)) + (x1 x2 − b̄1 x2)]."""
    b1, b2 = np.array([1.0, 2.0, 4.0]), np.array([3.0, -1.0, 0.5])
    x1, x2 = 2.5, -2.0
    game, _ = column_game(lambda c: np.asarray(c["a"], float) * np.asarray(c["b"], float), {"a": np.array([x1]), "b": np.array([x2])},
                          {"a": b1, "b": b2}, [["a"], ["b"]])
    a = shapley_values(game, 2, samples=1, seed=0)
    v0, v1, v2, v12 = (b1 * b2).mean(), x1 * b2.mean(), b1.mean() * x2, x1 * x2
    np.testing.assert_allclose(a.values, [0.5 * ((v1 - v0) + (v12 - v2)), 0.5 * ((v2 - v0) + (v12 - v1))], atol=1e-9)


def test_sampled_values_add_up_are_seeded_and_leave_the_torch_generator_alone() -> None:
    import torch

    rng = np.random.default_rng(0)
    bg = {f"c{j}": rng.normal(size=20) for j in range(9)}
    row = {k: np.array([1.5]) for k in bg}

    def predict(cols: dict[str, np.ndarray]) -> np.ndarray:  # interactions: sampling is not exact
        x = np.column_stack([np.asarray(cols[k], float) for k in sorted(cols)])
        return np.tanh(x[:, 0] * x[:, 1] + x[:, 2:].sum(axis=1)) + x[:, 3] * x[:, 4]

    game, _ = column_game(predict, row, bg, [[k] for k in bg])
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = shapley_values(game, 9, samples=3, seed=7)
    assert torch.equal(before, torch.random.get_rng_state())
    b = shapley_values(game, 9, samples=3, seed=7)
    c = shapley_values(game, 9, samples=3, seed=8)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)
    for r in (a, c):
        assert r.values.sum() == pytest.approx(r.prediction - r.base_value, abs=1e-6)


def test_one_antithetic_pair_is_exact_when_players_interact_only_in_pairs() -> None:
    """f = x0·x1 + x2·x3 − x1·x4 + x5: two orders (an order and its reverse) give the exact Shapley values (all 720
    orders, computed here by brute force); two independent random orders do not."""
    import itertools

    rng = np.random.default_rng(4)
    names = [f"c{j}" for j in range(6)]
    bg = {n: rng.normal(size=8) for n in names}
    row = {n: np.array([rng.normal() + 1.0]) for n in names}

    def predict(c: dict[str, np.ndarray]) -> np.ndarray:
        x = [np.asarray(c[n], float) for n in names]
        return x[0] * x[1] + x[2] * x[3] - x[1] * x[4] + x[5]

    game, _ = column_game(predict, row, bg, [[n] for n in names])
    exact = np.zeros(6)
    orders = list(itertools.permutations(range(6)))
    for order in orders:
        mask = np.zeros((7, 6), dtype=bool)
        for i, p in enumerate(order):
            mask[i + 1:, p] = True
        v = game(mask)
        for i, p in enumerate(order):
            exact[p] += (v[i + 1] - v[i]) / len(orders)
    pair = shapley_values(game, 6, samples=2, seed=0)
    np.testing.assert_allclose(pair.values, exact, atol=1e-6)
    independent = shapley_values(game, 6, samples=2, seed=0, antithetic=False)
    assert not np.allclose(independent.values, exact, atol=1e-3)
    assert independent.values.sum() == pytest.approx(exact.sum(), abs=1e-6)  # both add up


def test_word_game_on_an_additive_text_model_returns_the_word_weights() -> None:
    weights = {"refund": 0.5, "money": 0.2, "[MASK]": 0.0}
    parts = spans("please refund my money now", 32)
    game = word_game(lambda c: np.array([sum(weights.get(t, 0.0) for t in s.split()) for s in c["text"]]),
                     {"text": np.array(["please refund my money now"], dtype=object), "plan": np.array(["pro"], dtype=object)},
                     "text", parts, "[MASK]")
    a = shapley_values(game, len(parts), samples=2, seed=0)
    np.testing.assert_allclose(a.values, [0.0, 0.5, 0.0, 0.2, 0.0], atol=1e-9)
    assert (a.base_value, a.prediction) == (pytest.approx(0.0), pytest.approx(0.7))


def test_long_texts_become_at_most_max_words_spans_and_masking_drops_or_replaces() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    parts = spans(text, 32)
    assert len(parts) <= 32 and " ".join(parts) == text
    assert spans("  a\tb\nc ", 32) == ["a", "b", "c"]
    assert masked_text(["a", "b", "c"], [True, False, True], "") == "a c"
    assert masked_text(["a", "b", "c"], [False, False, True], "[MASK]") == "[MASK] [MASK] c"


# ------------------------------------------------------------------ the spec


def test_spec_rejects_overlapping_players_and_zero_budgets() -> None:
    with pytest.raises(ExplanationError, match="repeats"):
        ExplainSpec(columns=["a", "b"], groups={"g": ["b", "c"]})
    with pytest.raises(ExplanationError, match="no columns"):
        ExplainSpec(groups={"g": []})
    with pytest.raises(ExplanationError, match="samples"):
        ExplainSpec(columns=["a"], samples=0)
    with pytest.raises(ExplanationError, match="also a tabular player"):
        ExplainSpec(columns=["text"], text="text")
    spec = ExplainSpec(columns=["a"], groups={"g": ["b", "c"]}, text="t")
    assert spec.players(with_text=True) == [("t", ["t"]), ("a", ["a"]), ("g", ["b", "c"])]
    assert spec.needed == ["t", "a", "b", "c"]
    with pytest.raises(ExplanationError, match="'zz' is not in the training rows") as exc:
        ExplainSpec(columns=["zz"]).rows(pd.DataFrame({"a": [1]}))
    assert "derive" in exc.value.hint


# ------------------------------------------------------------------ the real tabular kit behind a linear ONNX model

SITES = ("north", "south", "east")


class Sensors(TabularWorkload):
    name = "sensors"
    task = "binary"
    model_name = "sensors-model"
    event_table = "readings"
    label = "failure"
    row_id = "reading_id"
    entity = "machine_id"
    gate_metric = "roc_auc"
    numeric: ClassVar[dict[str, tuple[float, float]]] = {"temperature": (-40.0, 250.0), "load": (0.0, 1.0)}
    categorical: ClassVar[dict[str, tuple[str, ...]]] = {"site": SITES}
    aggregate = ("temperature",)

    def generate(self) -> Any:  # not used: the kit is fitted on a hand-made frame
        raise NotImplementedError

    def live(self, n: int, drift: float, stream: int) -> pd.DataFrame:
        raise NotImplementedError


def readings(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"machine_id": rng.integers(1, 50, n), "temperature": rng.normal(80, 20, n), "load": rng.uniform(0, 1, n),
                         "site": rng.choice(SITES, n), "events_7d": rng.integers(1, 30, n).astype(float),
                         "temperature_mean_7d": rng.normal(80, 5, n), "failure": rng.integers(0, 2, n)})


def linear_onnx(path: Path, weights: np.ndarray, bias: float) -> Path:
    """``probability = features · weights + bias`` as an ONNX graph (no torch): a model with a known explanation."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(weights.astype(np.float32).reshape(-1, 1), "w")
    b = numpy_helper.from_array(np.array([bias], dtype=np.float32), "b")
    graph = helper.make_graph([helper.make_node("MatMul", ["features", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["probability"])],
                              "linear", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, len(weights)])],
                              [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def linear_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from kindml.model.export import onnx_session

    folder = tmp_path_factory.mktemp("bundle")
    kit = TabularKit(Sensors(KindmlConfig()))
    train = readings(400, 0)
    kit.fit(train)
    kit.save(folder)
    # inputs: temperature, load, events_7d, temperature_mean_7d, machine_id_known, site=north/south/east
    weights = np.array([0.01, 0.5, -0.02, 0.003, 0.0, 0.3, -0.2, 0.1])
    linear_onnx(folder / "model.onnx", weights, 0.05)
    save_background(sample_background(kit.explanation(), train, seed=0), folder)
    return {"folder": folder, "kit": kit, "weights": weights, "session": onnx_session(folder / "model.onnx"), "train": train}


def test_tabular_kit_attributions_are_exact_for_a_linear_model(linear_bundle: dict[str, Any]) -> None:
    """Through the real TabularKit feeds and ONNX Runtime: numeric φ = w (x − mean_bg x); the categorical site
    gets Σ_k w_k (1[x = k] − share_bg(k)); the values add up to prediction − base value."""
    kit, w = linear_bundle["kit"], linear_bundle["weights"]
    explainer = Explainer.from_bundle(linear_bundle["folder"], kit, linear_bundle["session"])
    bg = load_background(linear_bundle["folder"])
    assert bg is not None and len(bg["temperature"]) == 100 and list(bg) == explainer.spec.needed
    parsed = kit.signature().parse_v1([{"machine_id": 7, "temperature": 120.0, "load": 0.9, "site": "south"}])
    cols = {**parsed.columns, "events_7d": np.array([12.0]), "temperature_mean_7d": np.array([85.0])}
    [e] = explainer.explain(cols, parsed.n)
    got = e["attributions"]
    assert list(got) == sorted(got, key=lambda k: -abs(got[k]))  # strongest first
    for j, c in enumerate(["temperature", "load", "events_7d", "temperature_mean_7d"]):
        assert got[c] == pytest.approx(w[j] * (float(cols[c][0]) - bg[c].astype(float).mean()), abs=2e-5)
    share = {s: float((bg["site"] == s).mean()) for s in SITES}
    assert got["site"] == pytest.approx(sum(w[5 + k] * ((s == "south") - share[s]) for k, s in enumerate(SITES)), abs=2e-5)
    assert sum(got.values()) == pytest.approx(e["prediction"] - e["base_value"], abs=5e-5)
    p = float(explainer.outputs(cols)[0])
    assert e["prediction"] == pytest.approx(p, abs=1e-6) and e["target"] == "score" and e["players"] == "columns"
    assert e["model_rows"] >= 100 * (len(got) + 1)


def test_features_the_store_did_not_know_are_explained_with_the_fill(linear_bundle: dict[str, Any]) -> None:
    """A new entity (no looked-up features) is scored with the kit's fill values; its explanation says so through the inputs."""
    kit = linear_bundle["kit"]
    explainer = Explainer.from_bundle(linear_bundle["folder"], kit, linear_bundle["session"])
    out = explain_payload({"instances": [{"machine_id": 3, "temperature": 60.0, "load": 0.1, "site": "east"}]}, kit.signature(), explainer)
    [e] = out["explanations"]
    assert e["inputs"]["events_7d"] is None and e["inputs"]["site"] == "east" and e["inputs"]["temperature"] == 60.0
    assert sum(e["attributions"].values()) == pytest.approx(e["prediction"] - e["base_value"], abs=5e-5)
    assert out["degraded"] is False
    json.dumps(out)  # the answer is JSON as it is


def test_explain_requests_get_the_signature_messages_and_a_row_limit(linear_bundle: dict[str, Any]) -> None:
    kit = linear_bundle["kit"]
    sig = kit.signature()
    explainer = Explainer.from_bundle(linear_bundle["folder"], kit, linear_bundle["session"])
    ok = {"machine_id": 3, "temperature": 60.0, "load": 0.1, "site": "east"}
    cases = [
        ({"instances": [{**ok, "temperature": "hot"}]}, "instances[0].temperature must be a number"),
        ({"instances": [{**ok, "site": "west"}]}, "instances[0].site must be one of north, south, east"),
        ({"instances": []}, '"instances" is empty'),
        ({"rows": [ok]}, "unknown key(s) in the body: rows"),
        ({}, 'the body needs "instances"'),
        ({"instances": [ok] * (MAX_ROWS + 1)}, f"at most {MAX_ROWS} per request"),
        ({"instances": [ok], "target": "failure"}, '"target" names a class, but this model answers one score'),
        ({"instances": [ok], "target": 3}, '"target" must be a class name'),
        ([ok], "the body must be a JSON object"),
    ]
    for body, message in cases:
        with pytest.raises(RequestError) as exc:
            explain_payload(body, sig, explainer)
        assert message in str(exc.value), (body, str(exc.value))
    with pytest.raises(RequestError, match="at most 5 rows"):
        explainer.explain({"temperature": np.zeros(6)}, 6)
    with pytest.raises(NotImplementedError, match="no explanations"):
        explain_payload({"instances": [ok]}, sig, None)


def test_a_bundle_without_background_has_no_explainer(linear_bundle: dict[str, Any], tmp_path: Path) -> None:
    kit, session = linear_bundle["kit"], linear_bundle["session"]
    assert load_explainer(tmp_path, kit, session) is None
    with pytest.raises(ExplanationError, match="no explanation background") as exc:
        Explainer.from_bundle(tmp_path, kit, session)
    assert "Re-export" in exc.value.hint
    (tmp_path / BACKGROUND_FILE).write_text("not parquet")
    with pytest.raises(ExplanationError, match="cannot read the explanation background"):
        load_background(tmp_path)
    pd.DataFrame({"temperature": [1.0]}).to_parquet(tmp_path / BACKGROUND_FILE)
    with pytest.raises(ExplanationError, match="lacks column"):
        Explainer.from_bundle(tmp_path, kit, session)

    class Plain(TabularKit):
        def explanation(self) -> None:
            return None

    plain = Plain(kit.wl)
    assert load_explainer(linear_bundle["folder"], plain, session) is None
    with pytest.raises(ExplanationError, match="declares no explanation"):
        Explainer(plain, session, None)


def test_load_explainer_needs_captum_and_can_warm_it_up(linear_bundle: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    kit, session, folder = linear_bundle["kit"], linear_bundle["session"], linear_bundle["folder"]
    warmed = load_explainer(folder, kit, session, warm=True)
    assert isinstance(warmed, Explainer)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "captum" else real(name, *a))
    assert load_explainer(folder, kit, session) is None  # the optional extra is missing: :explain answers 501


def test_global_importance_ranks_inputs_by_mean_absolute_attribution(linear_bundle: dict[str, Any], tmp_path: Path) -> None:
    kit, w = linear_bundle["kit"], linear_bundle["weights"]
    explainer = Explainer.from_bundle(linear_bundle["folder"], kit, linear_bundle["session"])
    holdout = readings(300, 5)
    doc = global_importance(explainer, holdout, seed=0)
    by = {p["name"]: p for p in doc["players"]}
    assert set(by) == {"temperature", "load", "site", "events_7d", "temperature_mean_7d"} and doc["rows"] == 200
    # linear model: mean |φ_j| = |w_j| · mean |x_j − mean_bg x_j| over the sampled rows
    sample = holdout.sample(n=200, random_state=0)
    bg = load_background(linear_bundle["folder"])
    assert bg is not None
    bg50 = {k: v[:50] for k, v in bg.items()}
    for j, c in enumerate(["temperature", "load", "events_7d", "temperature_mean_7d"]):
        assert by[c]["mean_abs"] == pytest.approx(abs(w[j]) * np.abs(sample[c].to_numpy() - bg50[c].astype(float).mean()).mean(), rel=1e-3)
    assert [p["mean_abs"] for p in doc["players"]] == sorted((p["mean_abs"] for p in doc["players"]), reverse=True)
    assert sum(p["share"] for p in doc["players"]) == pytest.approx(1.0, abs=1e-3)
    path = save_importance(doc, tmp_path)
    assert load_importance(path) == doc
    assert global_importance(explainer, holdout, seed=0)["players"] == doc["players"]  # deterministic


def test_importance_files_are_checked_and_compared(tmp_path: Path) -> None:
    bad = tmp_path / "importance.json"
    for text, message in [("{", "cannot read"), (json.dumps({"schema_version": 9, "players": []}), "not an importance file"),
                          (json.dumps({"schema_version": 1, "players": [{"name": "a"}]}), "no name or mean_abs")]:
        bad.write_text(text)
        with pytest.raises(ExplanationError, match=message):
            load_importance(bad)
    new = {"players": [{"name": "amount", "mean_abs": 0.2, "share": 0.5}, {"name": "hour", "mean_abs": 0.1, "share": 0.25},
                       {"name": "channel", "mean_abs": 0.1, "share": 0.25}]}
    old = {"players": [{"name": "hour", "mean_abs": 0.3, "share": 0.75}, {"name": "country", "mean_abs": 0.1, "share": 0.25}]}
    rows = {r["name"]: r for r in compare(new, old)}
    assert list(rows) == ["amount", "hour", "channel", "country"]
    assert rows["hour"]["current_rank"] == 2 and rows["hour"]["other_rank"] == 1 and rows["hour"]["delta"] == pytest.approx(-0.2)
    assert rows["amount"]["other"] is None and rows["country"]["current"] is None
    assert [r["other"] for r in compare(new, None)] == [None, None, None]


def test_background_sample_is_seeded_small_and_derives_columns() -> None:
    frame = pd.DataFrame({"a": np.arange(500.0), "ts": pd.date_range("2026-01-01", periods=500, freq="h", tz="UTC")})
    spec = ExplainSpec(columns=["a", "hour"], derived={"hour": lambda f: f["ts"].dt.hour.to_numpy()}, background_rows=50)
    one, two = sample_background(spec, frame, seed=1), sample_background(spec, frame, seed=1)
    assert len(one) == 50 and list(one.columns) == ["a", "hour"] and one.equals(two)
    assert not one.equals(sample_background(spec, frame, seed=2))
    assert (one["hour"] == pd.to_datetime(frame.loc[one["a"].astype(int), "ts"]).dt.hour.to_numpy()).all()
    with pytest.raises(ExplanationError, match="no training rows"):
        sample_background(spec, frame.head(0))


# ------------------------------------------------------------------ the report section


def _run(root: Path, version: str = "4", importance: dict[str, Any] | None = None, gate: dict[str, Any] | None = None) -> Path:
    run = root / "runs" / "r1"
    kfp = run / "kfp" / "root"
    stages = {s: {"status": "succeeded", "seconds": 1.0} for s in ("train", "evaluate", "export", "register")}
    (run).mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"run_id": "r1", "status": "succeeded", "stages": stages,
                                                  "model": {"name": "m", "version": version}}))
    if importance is not None:
        (kfp / "export" / "onnx_model").mkdir(parents=True)
        (kfp / "export" / "onnx_model" / "importance.json").write_text(json.dumps(importance))
    if gate is not None:
        (kfp / "evaluate" / "evaluation").mkdir(parents=True)
        (kfp / "evaluate" / "evaluation" / "gate.json").write_text(json.dumps(gate))
    return run


IMPORTANCE = {"schema_version": 1, "method": "mean |Shapley value| per player", "target": "score", "rows": 200, "background_rows": 50,
              "samples": 1, "seed": 0, "model_rows": 12345, "seconds": 1.5,
              "players": [{"name": "amount", "columns": ["amount"], "mean_abs": 0.2, "mean": 0.01, "share": 0.6},
                          {"name": "hour", "columns": ["hour"], "mean_abs": 0.1, "mean": 0.0, "share": 0.3},
                          {"name": "<b>x</b>", "columns": ["x"], "mean_abs": 0.03, "mean": 0.0, "share": 0.1}]}


def test_report_section_compares_the_run_with_the_champion(tmp_path: Path) -> None:
    from kindml.report.collect import collect, comparison_version
    from kindml.report.render import render_html

    data = collect(_run(tmp_path, importance=IMPORTANCE, gate={"promote": True, "champion_version": "2"}))
    assert comparison_version(data) == ("2", "champion")
    other = {**IMPORTANCE, "players": [{"name": "hour", "columns": ["hour"], "mean_abs": 0.25, "share": 0.7},
                                       {"name": "amount", "columns": ["amount"], "mean_abs": 0.1, "share": 0.3}]}
    data.importance_other = {"version": "2", "role": "champion", "doc": other}
    page = render_html(data)
    sec = page.split('<section id="importance">')[1].split("</section>")[0]
    assert "v4" in sec and "v2 (champion)" in sec and "amount" in sec and "&lt;b&gt;x&lt;/b&gt;" in sec and "<b>x</b>" not in sec
    assert "<svg" in sec and 'class="bad"' in sec and "could not be rendered" not in page
    data.importance_other = {"version": "2", "role": "champion", "doc": None}
    assert "registered before explanations" in render_html(data)
    data.importance_other = None
    alone = render_html(data).split('<section id="importance">')[1].split("</section>")[0]
    assert "no earlier version" in alone and "change" not in alone


def test_report_section_says_why_an_importance_is_missing(tmp_path: Path) -> None:
    from kindml.report.collect import collect, comparison_version
    from kindml.report.render import render_html

    data = collect(_run(tmp_path))
    sec = render_html(data).split('<section id="importance">')[1].split("</section>")[0]
    assert "No global importance" in sec and "kindml[explain]" in sec
    data.versions = [{"version": "3", "aliases": []}, {"version": "4", "aliases": ["champion"]}]
    assert comparison_version(data) == ("3", "previous version")
    data.versions = [{"version": "5", "aliases": ["champion"]}, {"version": "4", "aliases": []}]
    assert comparison_version(data) == ("5", "champion")
    data.versions = [{"version": "4", "aliases": ["champion"]}]
    assert comparison_version(data) is None
