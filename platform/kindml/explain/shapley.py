"""Shapley values of a model's output over *players* (raw columns, groups of columns, words), with captum.

A game is a value function ``v(masks) -> values``: ``masks`` is a boolean matrix
``(k, players)`` (True: the player is present) and ``v`` returns one number per
row. :func:`shapley_values` asks captum's
:class:`~captum.attr.ShapleyValueSampling` (random orders of the players, in
antithetic pairs: an order and its reverse; for at most :data:`EXACT_PLAYERS`
players :class:`~captum.attr.ShapleyValues`, every order: exact) for the
attributions of "all present" against "all absent".
Each sampled order telescopes from ``v(none)`` to ``v(all)``, so the values
always add up: ``sum(values) == v(all) - v(none)`` (efficiency), whatever the
budget. captum draws the orders from torch's global generator: the call runs
inside ``torch.random.fork_rng`` seeded with ``seed`` (deterministic, and the
caller's random state is left alone).

Two games cover the kits:

- :func:`column_game`: interventional SHAP for one row: an absent player's
  columns take the values of each background row, and ``v`` is the mean output
  over the background (so ``v(none)`` is the mean output over the background);
- :func:`word_game`: an absent word (span) is replaced by a mask token, the
  other columns stay as they are (no background: one model row per coalition).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Columns (one array per column, equal lengths) → one output per row (the explained target)."""
Game = Callable[[np.ndarray], np.ndarray]

EXACT_PLAYERS = 4
"""Up to this many players every order is evaluated (exact Shapley values); beyond, ``samples`` random orders."""
ROWS_PER_CALL = 8192


def antithetic_orders(players: int, samples: int) -> Any:
    """Random orders in antithetic pairs (an order, then the same order reversed), drawn from torch's generator like
    captum's own: within a pair every pairwise interaction is split exactly, so a model whose players interact at
    most in pairs gets exact values from one pair, and any model gets less variance per evaluation."""
    import torch

    order: list[int] = []
    for i in range(samples):
        order = torch.randperm(players).tolist() if i % 2 == 0 else order[::-1]
        yield order
"""Model rows per call of the predict function (coalitions are batched up to this)."""


@dataclass
class Attribution:
    values: np.ndarray
    """One value per player; they add up to ``prediction - base_value``."""
    base_value: float
    """``v(none)``: the mean output over the background (tabular), the output of the all-masked text (text)."""
    prediction: float
    """``v(all)``: the output for the row as given."""
    coalitions: int
    """Coalitions evaluated (each costs one model row per background row)."""


def shapley_values(game: Game, players: int, samples: int, seed: int, batch: int = 64, antithetic: bool = True,
                   ends: bool = True) -> Attribution:
    """Shapley values of ``game`` over ``players`` players (captum; exact for ≤ :data:`EXACT_PLAYERS` players).

    ``antithetic``: captum's sampler walks :func:`antithetic_orders` (its ``permutation_generator``) instead of
    independent random orders. ``ends``: also evaluate ``v(none)`` and ``v(all)`` for the answer (two coalitions;
    otherwise they are NaN)."""
    import torch
    from captum.attr import ShapleyValues, ShapleyValueSampling

    counter = {"coalitions": 0}

    def forward(x: Any) -> Any:
        masks = x.detach().numpy() > 0.5
        counter["coalitions"] += len(masks)
        return torch.from_numpy(np.asarray(game(masks), dtype=np.float64).reshape(len(masks)))

    both = np.asarray(game(np.array([[False] * players, [True] * players])), dtype=np.float64) if ends or players == 0 \
        else np.array([np.nan, np.nan])
    extra = 2 if ends or players == 0 else 0
    if players == 0:
        return Attribution(np.zeros(0), float(both[0]), float(both[1]), extra)
    ones = torch.ones((1, players), dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if players <= EXACT_PLAYERS:
            attr = ShapleyValues(forward).attribute(ones, baselines=torch.zeros_like(ones), perturbations_per_eval=max(1, batch))
        else:
            sampler = ShapleyValueSampling(forward)
            if antithetic:
                sampler.permutation_generator = antithetic_orders
            attr = sampler.attribute(ones, baselines=torch.zeros_like(ones), n_samples=max(1, samples), perturbations_per_eval=max(1, batch))
    values = attr.detach().numpy().reshape(players).astype(np.float64)
    return Attribution(values, float(both[0]), float(both[1]), counter["coalitions"] + extra)


def _repeat(value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value)
    return np.repeat(arr[:1], n) if arr.ndim else np.repeat(arr.reshape(1), n)


def column_game(predict: Predict, row: Mapping[str, np.ndarray], background: Mapping[str, np.ndarray],
                players: Sequence[Sequence[str]]) -> tuple[Game, int]:
    """The interventional game of one row: (game, background rows). ``row``: every column, length 1."""
    n_bg = len(next(iter(background.values())))
    played = {c for cs in players for c in cs}

    def game(masks: np.ndarray) -> np.ndarray:
        k = len(masks)
        cols: dict[str, np.ndarray] = {c: _repeat(v, k * n_bg) for c, v in row.items() if c not in played}
        for p, cs in enumerate(players):
            keep = np.repeat(masks[:, p], n_bg)
            for c in cs:
                bg = np.tile(np.asarray(background[c]), k)
                here = _repeat(row[c], k * n_bg)
                if here.dtype.kind in "biuf" and bg.dtype.kind in "biuf":
                    cols[c] = np.where(keep, here.astype(np.float64), bg.astype(np.float64))
                else:
                    cols[c] = np.where(keep, here.astype(object), bg.astype(object))
        return np.asarray(predict(cols), dtype=np.float64).reshape(k, n_bg).mean(axis=1)

    return game, n_bg


_WORD = re.compile(r"\S+")


def spans(text: str, max_spans: int) -> list[str]:
    """The words of ``text`` (whitespace-separated), merged into at most ``max_spans`` contiguous spans."""
    words = _WORD.findall(text)
    if len(words) <= max_spans:
        return words
    size = -(-len(words) // max_spans)
    return [" ".join(words[i:i + size]) for i in range(0, len(words), size)]


def masked_text(parts: Sequence[str], keep: Sequence[bool], mask_token: str) -> str:
    out = [p if k else mask_token for p, k in zip(parts, keep, strict=True)]
    return " ".join(p for p in out if p)


def word_game(predict: Predict, row: Mapping[str, np.ndarray], text_column: str, parts: Sequence[str], mask_token: str) -> Game:
    """The game of one row's text: an absent span becomes ``mask_token`` ("" drops it); other columns as given."""

    def game(masks: np.ndarray) -> np.ndarray:
        k = len(masks)
        cols = {c: _repeat(v, k) for c, v in row.items() if c != text_column}
        cols[text_column] = np.array([masked_text(parts, m, mask_token) for m in masks], dtype=object)
        return np.asarray(predict(cols), dtype=np.float64).reshape(k)

    return game
