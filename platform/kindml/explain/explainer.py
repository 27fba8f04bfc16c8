"""A model version's explainer: its kit, its ONNX session and its background sample → Shapley attributions.

The explained output is what the predictor answers with: the kit's
probabilities through the same ``feeds`` and the same ONNX session (binary: the
score; multiclass: the probability of the predicted class, or of a class the
caller names). Per request at most :data:`MAX_ROWS` rows are explained, each
with a fixed budget (:class:`~kindml.explain.spec.ExplainSpec`):

- tabular kits: ``samples × players + 3`` coalitions (captum adds the two ends, we
  evaluate them once more for the answer), each averaged over
  ``request_background`` rows: e.g. 26 players, 10 orders, 100 rows =
  26,300 model rows;
- text kits: ``samples × spans + 3`` masked texts, one model row each (at most
  ``max_words`` spans; the text kit uses 6 orders).

Measured latency and sampling error per budget: ``benchmarks/explain/results.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kindml.explain.background import load_background
from kindml.explain.shapley import (
    EXACT_PLAYERS,
    ROWS_PER_CALL,
    Attribution,
    column_game,
    shapley_values,
    spans,
    word_game,
)
from kindml.explain.spec import ExplainSpec, ExplanationError
from kindml.serving.signature import RequestError

MAX_ROWS = 5
"""Rows one explain request may carry."""
DEFAULT_SEED = 0


class Explainer:
    """Attributions of one model version (``kit`` loaded, ``session`` its ONNX Runtime session)."""

    def __init__(self, kit: Any, session: Any, background: Mapping[str, np.ndarray] | None, spec: ExplainSpec | None = None,
                 seed: int = DEFAULT_SEED, max_rows: int = MAX_ROWS) -> None:
        spec = spec if spec is not None else kit.explanation()
        if spec is None:
            raise ExplanationError(f"the model kit {type(kit).__name__} declares no explanation",
                                   "Give the kit an explanation() method returning an ExplainSpec (docs/explanations.md).")
        self.kit = kit
        self.session = session
        self.spec = spec
        self.seed = seed
        self.max_rows = max_rows
        self.background = dict(background) if background is not None else None
        self._lock = threading.Lock()  # one explanation at a time: captum's orders come from torch's global generator
        if self.spec.players() and self.background is None:
            raise ExplanationError("this model version has no explanation background sample",
                                   "Re-export it with this kindml (the export stage writes explain_background.parquet).")
        if self.background is not None:
            missing = [c for c in self.spec.needed if c not in self.background]
            if missing:
                raise ExplanationError(f"the explanation background lacks column(s) {', '.join(missing)}",
                                       "The background was written by another version of the kit: re-export the model.")

    @classmethod
    def from_bundle(cls, folder: Path, kit: Any, session: Any, **kwargs: Any) -> Explainer:
        """The explainer of an exported bundle (``explain_background.parquet`` next to ``model.onnx``)."""
        return cls(kit, session, load_background(Path(folder)), **kwargs)

    # --- the explained output ----------------------------------------------------------------------

    def outputs(self, cols: Mapping[str, Any]) -> np.ndarray:
        """The kit's probabilities for columns: ``(n,)`` (a score) or ``(n, classes)``."""
        from kindml.model.export import run_onnx

        return np.asarray(self.kit.probabilities(run_onnx(self.session, self.kit.feeds(cols))), dtype=np.float64)

    def class_names(self, width: int) -> list[str]:
        names = self.kit.class_names
        return [str(c) for c in names] if names and len(names) == width else [str(i) for i in range(width)]

    def target_index(self, probs: np.ndarray, target: str | None) -> list[int | None]:
        """Per row: the explained column of the output (None for a 1-D score)."""
        if probs.ndim == 1:
            if target is not None:
                raise RequestError(f'"target" names a class, but this model answers one score; drop "target" (got {target!r})')
            return [None] * len(probs)
        names = self.class_names(probs.shape[1])
        if target is None:
            return [int(i) for i in probs.argmax(axis=1)]
        if target not in names:
            raise RequestError(f'"target" must be one of {", ".join(names)}; got {target!r}')
        return [names.index(target)] * len(probs)

    def predict_fn(self, index: int | None) -> Any:
        def predict(cols: dict[str, np.ndarray]) -> np.ndarray:
            p = self.outputs(cols)
            return p.reshape(-1) if index is None else p[:, index]

        return predict

    # --- per request ----------------------------------------------------------------------------------

    def explain(self, cols: Mapping[str, Any], n: int, target: str | None = None) -> list[dict[str, Any]]:
        """Attributions for the ``n`` rows of ``cols`` (request fields after the feature lookup)."""
        with self._lock:
            return self._explain(cols, n, target)

    def _explain(self, cols: Mapping[str, Any], n: int, target: str | None) -> list[dict[str, Any]]:
        if n > self.max_rows:
            raise RequestError(f'"instances" has {n} rows; an explanation costs hundreds of model evaluations per row, so :explain '
                               f"takes at most {self.max_rows} rows per request — send the rows you want explained")
        cols = {k: np.asarray(v) for k, v in cols.items()}
        for c in self.spec.needed:
            if c not in cols:
                cols[c] = np.full(n, None, dtype=object)  # not sent / not looked up: the kit's fill, as when scoring
        probs = self.outputs(cols)
        indices = self.target_index(probs, target)
        names = self.class_names(probs.shape[1]) if probs.ndim == 2 else []
        out = []
        for i, index in enumerate(indices):
            row = {c: v[i:i + 1] for c, v in cols.items()}
            out.append(self._explain_row(row, index, "score" if index is None else names[index]))
        return out

    def _explain_row(self, row: dict[str, np.ndarray], index: int | None, target: str) -> dict[str, Any]:
        spec = self.spec
        predict = self.predict_fn(index)
        if spec.text is not None:
            parts = spans(str(row[spec.text][0]), spec.max_words)
            attr = shapley_values(word_game(predict, row, spec.text, parts, spec.mask_token), len(parts), spec.samples, self.seed)
            pairs = [{"word": p, "attribution": round(float(v), 6)} for p, v in zip(parts, attr.values, strict=True)]
            return _answer(target, attr, "words", pairs, attr.coalitions, _method(len(parts), spec.samples))
        players = spec.players()
        background = self._background(spec.request_background)
        game, n_bg = column_game(predict, row, background, [cs for _, cs in players])
        attr = shapley_values(game, len(players), spec.samples, self.seed, batch=max(1, ROWS_PER_CALL // n_bg))
        ranked = sorted(zip([name for name, _ in players], attr.values, strict=True), key=lambda kv: -abs(kv[1]))
        return _answer(target, attr, "columns", {name: round(float(v), 6) for name, v in ranked}, attr.coalitions * n_bg,
                       _method(len(players), spec.samples))

    def _background(self, rows: int) -> dict[str, np.ndarray]:
        assert self.background is not None
        return {c: v[:rows] for c, v in self.background.items()}

    # --- whole rows as players (the global importance) --------------------------------------------------

    def row_attributions(self, cols: Mapping[str, Any], n: int, background_rows: int, samples: int) -> tuple[list[str], np.ndarray, int]:
        """For the global importance: (player names, values ``(n, players)``, model rows). The text, if any, is one player."""
        with self._lock:
            return self._row_attributions(cols, n, background_rows, samples)

    def _row_attributions(self, cols: Mapping[str, Any], n: int, background_rows: int, samples: int) -> tuple[list[str], np.ndarray, int]:
        if self.background is None:
            raise ExplanationError("no explanation background sample", "Export the model with kindml to write one.")
        players = self.spec.players(with_text=True)
        cols = {k: np.asarray(v) for k, v in cols.items()}
        probs = self.outputs(cols)
        indices = self.target_index(probs, None)
        background = self._background(background_rows)
        values = np.zeros((n, len(players)))
        rows_run = 0
        for i, index in enumerate(indices):
            game, n_bg = column_game(self.predict_fn(index), {c: v[i:i + 1] for c, v in cols.items()}, background,
                                     [cs for _, cs in players])
            attr = shapley_values(game, len(players), samples, self.seed + i, batch=max(1, ROWS_PER_CALL // n_bg), ends=False)
            values[i] = attr.values
            rows_run += attr.coalitions * n_bg
        return [name for name, _ in players], values, rows_run


def _method(players: int, samples: int) -> str:
    return "exact Shapley values (every order)" if players <= EXACT_PLAYERS else f"Shapley value sampling ({samples} orders)"


def _answer(target: str, attr: Attribution, players: str, attributions: Any, model_rows: int, method: str) -> dict[str, Any]:
    return {"target": target, "prediction": round(attr.prediction, 6), "base_value": round(attr.base_value, 6),
            "players": players, "attributions": attributions, "method": method, "model_rows": int(model_rows)}


def top(attributions: Mapping[str, float] | Sequence[Mapping[str, Any]], k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` largest attributions by magnitude (for logs and CLIs)."""
    items = [(str(a["word"]), float(a["attribution"])) for a in attributions] if isinstance(attributions, list) \
        else [(str(c), float(v)) for c, v in dict(attributions).items()]
    return sorted(items, key=lambda kv: -abs(kv[1]))[:k]
