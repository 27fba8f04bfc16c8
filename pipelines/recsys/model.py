"""The recommendation model kit: a two-tower model (matrix factorisation with side features) in PyTorch.

- **user tower**: a learned embedding per training user (index 0: a user the model has never
  seen) plus a linear map of the user's Feast profile (log count, mean rating, liked share,
  recency at the time of the question, genre affinities, a "has history" flag), standardised
  inside the graph;
- **item tower**: a learned embedding per catalogue item plus a linear map of its genres and its
  rating statistics as of the end of training (from the ``item_stats`` view), and an item bias;
- **score**: the dot product of the towers plus the item bias.

Training (Ray Tune, then Ray Train DDP: :class:`TwoTowerRecipe`) uses implicit feedback from the
ratings: every observed rating is a row whose label is "liked" (rating >= 4; a disliked rating is
an explicit negative), plus sampled negatives — one fixed random item per row in the arrays (so
the validation metric, a sampled AUC, is reproducible) and ``negatives`` fresh random items per
row in every training step. With probability ``user_dropout`` a row's user index is replaced by
the unknown-user index, so the profile path alone learns to serve users the embeddings never saw.

The exported ONNX graph scores a batch of users against the whole catalogue and keeps the best K:
inputs ``user_index`` [n], ``user_features`` [n, F] and ``exclude`` [n, m] (catalogue indices a
user already has, padded with the catalogue size), outputs ``score`` [n, K] (best first) and
``item_index`` [n, K]. The item tower is folded into a constant matrix at export, so one batch is a
gather, one small matmul, a scatter of the exclusions and a TopK: what lets the batch stage score
every user fast, and the predictor score a user live.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.model.kit import ModelKit, OnnxSpec, frame_columns
from kindml.model.recipe import TorchRecipe
from kindml.pipelines.recsys.data import GENRES, LIKED
from kindml.pipelines.recsys.features import GENRE_FEATURES, genre_matrix

PREPROCESSING = "recsys_preprocessing.json"
SCHEMA_VERSION = 1
RECENCY_CAP_DAYS = 3650.0
DAY_NS = 86_400 * 10**9
NEG_SCORE = -1.0e9
USER_INPUTS = ("log_rating_count", "mean_rating", "liked_share", "log_recency_days", *GENRE_FEATURES, "has_history")
ITEM_INPUTS = (*(f"is_{g}" for g in GENRE_FEATURES), "item_log_count", "item_mean_rating", "item_liked_share")


@dataclass
class Ranked:
    """Top-K lists: item ids (``-1`` pads a short list), their scores (best first), and which rows came precomputed."""

    items: np.ndarray
    scores: np.ndarray
    precomputed: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def _torch() -> Any:
    import torch

    return torch


def build_two_tower(n_users: int, n_items: int, user_mean: list[float], user_std: list[float], item_feats: list[list[float]],
                    dim: int) -> Any:
    torch = _torch()
    nn = torch.nn

    class TwoTower(nn.Module):
        """User tower · item tower + item bias. Index 0 of the users and index ``n_items`` of the items mean "unknown"."""

        def __init__(self) -> None:
            super().__init__()
            self.n_items = n_items
            self.user_emb = nn.Embedding(n_users + 1, dim)
            self.user_proj = nn.Linear(len(user_mean), dim)
            self.item_emb = nn.Embedding(n_items + 1, dim)
            self.item_proj = nn.Linear(len(item_feats[0]) if item_feats else 1, dim, bias=False)
            self.item_bias = nn.Embedding(n_items + 1, 1)
            for emb in (self.user_emb, self.item_emb):
                nn.init.normal_(emb.weight, std=0.05)
            nn.init.zeros_(self.item_bias.weight)
            feats = torch.tensor(np.asarray(item_feats, dtype=np.float32)) if item_feats else torch.zeros((n_items, 1))
            self.register_buffer("item_feats", torch.cat([feats, torch.zeros((1, feats.shape[1]))], dim=0))
            self.register_buffer("user_mean", torch.tensor(user_mean, dtype=torch.float32))
            self.register_buffer("user_std", torch.tensor(user_std, dtype=torch.float32))

        def user_vec(self, user_index: Any, user_features: Any) -> Any:
            return self.user_emb(user_index) + self.user_proj((user_features - self.user_mean) / self.user_std)

        def item_vec(self, item_index: Any) -> Any:
            return self.item_emb(item_index) + self.item_proj(self.item_feats[item_index])

        def forward(self, user_index: Any, user_features: Any, item_index: Any, negatives: Any = None) -> Any:
            u = self.user_vec(user_index, user_features)
            if negatives is None:
                return (u * self.item_vec(item_index)).sum(-1) + self.item_bias(item_index).squeeze(-1)
            items = torch.cat([item_index.unsqueeze(1), negatives], dim=1)
            return (u.unsqueeze(1) * self.item_vec(items)).sum(-1) + self.item_bias(items).squeeze(-1)

    return TwoTower()


def rank_module(model: Any, k: int) -> Any:
    """The export wrapper: score users against the whole catalogue (the item tower folded into constants), drop the
    excluded items, keep the best ``k``."""
    torch = _torch()
    net = model.module if hasattr(model, "module") else model
    net.eval()
    n = net.n_items
    with torch.no_grad():
        idx = torch.arange(n)
        item_matrix = net.item_vec(idx).detach().clone()
        bias = net.item_bias(idx).squeeze(-1).detach().clone()

    class RankUsers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("item_matrix_t", item_matrix.t().contiguous())
            self.register_buffer("bias", bias)
            self.k = min(k, n)

        def forward(self, user_index: Any, user_features: Any, exclude: Any) -> Any:
            u = self.net.user_vec(user_index, user_features)
            scores = torch.matmul(u, self.item_matrix_t) + self.bias
            pad = torch.full((scores.shape[0], 1), NEG_SCORE, dtype=scores.dtype)
            scores = torch.cat([scores, pad], dim=1).scatter(1, exclude, NEG_SCORE)
            top = torch.topk(scores, self.k, dim=1, largest=True, sorted=True)
            return top.values, top.indices

    return RankUsers().eval()


class TwoTowerRecipe(TorchRecipe):
    """Ray Tune over the embedding size, learning rate and weight decay; the DDP fit of the two towers."""

    probability = "sigmoid"
    val_metric = "sampled_auc"
    predict_batch = 8192

    def __init__(self, negatives: int = 4, user_dropout: float = 0.15) -> None:
        self.negatives = negatives
        self.user_dropout = user_dropout

    def search_space(self, cfg: Any) -> dict[str, Any]:
        from ray import tune

        return {"lr": tune.loguniform(2e-3, 2e-2), "dim": tune.choice([16, 32]), "weight_decay": tune.choice([0.0, 1e-6, 1e-5]),
                "batch_size": cfg.batch_size, "epochs": cfg.tune_epochs, "seed": cfg.seed}

    @property
    def tuned(self) -> tuple[str, ...]:
        return ("lr", "dim", "weight_decay")

    def build(self, params: dict[str, Any], meta: dict[str, Any]) -> Any:
        return build_two_tower(int(meta["n_users"]), int(meta["n_items"]), meta["user_mean"], meta["user_std"], meta["item_features"],
                               int(params["dim"]))

    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: batch[k] for k in ("user_index", "user_features", "item_index")}

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        torch = _torch()
        net = model.module if hasattr(model, "module") else model
        y = batch["y"].float()
        n = len(y)
        users = batch["user_index"]
        if self.user_dropout > 0:
            users = torch.where(torch.rand(n) < self.user_dropout, torch.zeros_like(users), users)
        negatives = torch.randint(0, net.n_items, (n, self.negatives))
        logits = model(user_index=users, user_features=batch["user_features"], item_index=batch["item_index"], negatives=negatives)
        target = torch.cat([y.unsqueeze(1), torch.zeros((n, self.negatives))], dim=1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)

    def score(self, y: np.ndarray, p: np.ndarray) -> float:
        """Sampled AUC: liked items against disliked and random ones (a cheap proxy of ranking quality)."""
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


class RecsysKit(ModelKit):
    files = (PREPROCESSING,)

    def __init__(self, max_k: int = 50, negatives: int = 4, user_dropout: float = 0.15, seed: int = 42) -> None:
        self.recipe = TwoTowerRecipe(negatives, user_dropout)
        self.max_k = max_k
        self.seed = seed
        self.state: dict[str, Any] | None = None
        self._user_pos: dict[int, int] = {}
        self._item_pos: dict[int, int] = {}
        self._item_ids = np.zeros(0, dtype=np.int64)

    # --- preprocessing ------------------------------------------------------------------------------

    def _index(self) -> None:
        assert self.state is not None
        self._user_pos = {int(u): i + 1 for i, u in enumerate(self.state["user_ids"])}
        self._item_ids = np.asarray(self.state["item_ids"], dtype=np.int64)
        self._item_pos = {int(v): i for i, v in enumerate(self._item_ids)}

    @property
    def n_items(self) -> int:
        return len(self._item_ids)

    @property
    def item_ids(self) -> np.ndarray:
        return self._item_ids

    def fit(self, train: pd.DataFrame) -> None:
        users = np.sort(train["user_id"].unique()).astype(np.int64)
        items_df = train.drop_duplicates("item_id", keep="last").sort_values("item_id")
        item_ids = items_df["item_id"].to_numpy(np.int64)
        genres = genre_matrix(items_df)
        # the item's statistics as of the end of training: the item_stats snapshot (Feast, point-in-time) of its last training row
        last = train.sort_values("event_timestamp", kind="stable").drop_duplicates("item_id", keep="last").set_index("item_id").loc[item_ids]

        def stat(name: str, default: float) -> np.ndarray:
            v = pd.to_numeric(last[name], errors="coerce").to_numpy(np.float64) if name in last else np.full(len(last), np.nan)
            return np.where(np.isfinite(v), v, default)

        mean_all, liked_all = float(train["rating"].mean()), float((train["rating"] >= LIKED).mean())
        stats = np.column_stack([np.log1p(stat("item_rating_count", 0.0)), stat("item_mean_rating", mean_all), stat("item_liked_share", liked_all)])
        stats = (stats - stats.mean(axis=0)) / np.where(stats.std(axis=0) > 1e-9, stats.std(axis=0), 1.0)
        self.state = {
            "schema_version": SCHEMA_VERSION, "user_ids": users.tolist(), "item_ids": item_ids.tolist(), "max_k": self.max_k,
            "genres": list(GENRES), "user_inputs": list(USER_INPUTS), "item_inputs": list(ITEM_INPUTS),
            "item_features": np.round(np.column_stack([genres, stats]), 5).tolist(),
            "fill": {"mean_rating": mean_all, "liked_share": liked_all},
            "user_mean": [], "user_std": [],
        }
        self._index()
        feats = self.user_matrix(frame_columns(train), len(train))
        std = feats.std(axis=0)
        self.state["user_mean"] = [float(x) for x in feats.mean(axis=0)]
        self.state["user_std"] = [float(s) if s > 1e-6 else 1.0 for s in std]

    def save(self, folder: Path) -> None:
        assert self.state is not None
        (Path(folder) / PREPROCESSING).write_text(json.dumps(self.state), encoding="utf-8")

    def load(self, folder: Path) -> RecsysKit:
        folder = Path(folder)
        path = folder / PREPROCESSING if (folder / PREPROCESSING).is_file() else next(iter(sorted(folder.rglob(PREPROCESSING))), None)
        if path is None:
            raise FileNotFoundError(f"{PREPROCESSING} not found under {folder}")
        self.state = json.loads(path.read_text(encoding="utf-8"))
        if self.state.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: recsys preprocessing schema_version {self.state.get('schema_version')} is not {SCHEMA_VERSION}")
        self.max_k = int(self.state["max_k"])
        self._index()
        return self

    def meta(self) -> dict[str, Any]:
        assert self.state is not None
        return {"n_users": len(self.state["user_ids"]), "n_items": len(self.state["item_ids"]), "user_mean": self.state["user_mean"],
                "user_std": self.state["user_std"], "item_features": self.state["item_features"]}

    def user_index(self, user_ids: Any) -> np.ndarray:
        """Training users → their embedding row; anyone else → 0 (the unknown user)."""
        return np.array([self._user_pos.get(int(u), 0) for u in np.asarray(user_ids)], dtype=np.int64)

    def item_index(self, item_ids: Any) -> np.ndarray:
        """Catalogue items → their row; anything else → the catalogue size (never recommended)."""
        return np.array([self._item_pos.get(int(i), self.n_items) for i in np.asarray(item_ids)], dtype=np.int64)

    def user_matrix(self, cols: Mapping[str, Any], n: int) -> np.ndarray:
        """The user tower's side inputs [n, F] from the profile columns (missing → "no history"), recency as of each row's
        ``event_timestamp`` (now when the rows have none, as a live request)."""
        assert self.state is not None
        fill = self.state["fill"]

        def col(name: str, default: float) -> np.ndarray:
            raw = cols.get(name)
            if raw is None:
                return np.full(n, np.nan)
            arr = np.asarray(raw)
            if arr.dtype.kind in "fiu":
                return arr.astype(np.float64)
            return pd.to_numeric(pd.Series(arr, dtype=object), errors="coerce").to_numpy(np.float64)  # None (not looked up) → NaN

        count = col("rating_count", 0.0)
        has = np.isfinite(count) & (count > 0)
        ts = cols.get("event_timestamp")
        if ts is None:
            now = np.full(n, time.time() / 86_400.0)
        else:
            now = pd.to_datetime(pd.Series(np.asarray(ts)), utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64) / DAY_NS
        last = col("last_rating_at", np.nan)
        recency = np.clip(np.where(np.isfinite(last), now - last, RECENCY_CAP_DAYS), 0.0, RECENCY_CAP_DAYS)
        out = [np.log1p(np.where(has, count, 0.0)),
               np.where(has & np.isfinite(col("mean_rating", np.nan)), col("mean_rating", np.nan), fill["mean_rating"]),
               np.where(has & np.isfinite(col("liked_share", np.nan)), col("liked_share", np.nan), fill["liked_share"]),
               np.log1p(recency)]
        for g in GENRE_FEATURES:
            v = col(g, 0.0)
            out.append(np.where(has & np.isfinite(v), v, 0.0))
        out.append(has.astype(np.float64))
        return np.column_stack(out).astype(np.float32)

    def _negatives(self, frame: pd.DataFrame) -> np.ndarray:
        """One fixed random catalogue item per row (reproducible: seeded by the rows' ids)."""
        ids = frame["rating_id"].to_numpy(np.int64) if "rating_id" in frame else np.arange(len(frame))
        rng = np.random.default_rng([self.seed, len(frame), int(ids.sum() % (2**62))])
        return rng.integers(0, max(self.n_items, 1), size=len(frame)).astype(np.int64)

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Every rating row, then the same rows with a random item instead (a sampled negative)."""
        users = self.user_index(frame["user_id"])
        feats = self.user_matrix(frame_columns(frame), len(frame))
        items = self.item_index(frame["item_id"])
        return {"user_index": np.concatenate([users, users]), "user_features": np.concatenate([feats, feats]),
                "item_index": np.concatenate([items, self._negatives(frame)])}

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        liked = (frame["rating"].to_numpy(np.float64) >= LIKED).astype(np.int64)
        return np.concatenate([liked, np.zeros(len(frame), dtype=np.int64)])

    # --- ranking ------------------------------------------------------------------------------------

    def exclusions(self, cols: Mapping[str, Any], n: int) -> np.ndarray:
        """``exclude`` (item ids per row) → catalogue indices padded with the catalogue size, int64 [n, max(1, m)]."""
        raw = cols.get("exclude")
        if raw is None:
            return np.full((n, 1), self.n_items, dtype=np.int64)
        lists = [v if v is not None and np.ndim(v) > 0 else () for v in raw]  # None / NaN (a user with no list) → nothing
        lengths = np.array([len(v) for v in lists], dtype=np.int64)
        flat = np.concatenate([np.asarray(v, dtype=np.int64) for v in lists if len(v)]) if lengths.sum() else np.zeros(0, np.int64)
        rows = np.repeat(np.arange(n), lengths)
        pos = np.searchsorted(self._item_ids, flat)  # the catalogue's ids are sorted (fit)
        pos_c = np.clip(pos, 0, max(self.n_items - 1, 0))
        ok = (pos < self.n_items) & (self._item_ids[pos_c] == flat) if self.n_items else np.zeros(len(flat), dtype=bool)
        rows, idx = rows[ok], pos_c[ok]  # ids outside the catalogue cannot be recommended anyway
        counts = np.bincount(rows, minlength=n)
        out = np.full((n, max(1, int(counts.max()) if n else 1)), self.n_items, dtype=np.int64)
        col = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        out[rows, col] = idx
        return out

    def feeds(self, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
        ids = np.asarray(cols["user_id"])
        n = len(ids)
        return {"user_index": self.user_index(ids), "user_features": self.user_matrix(cols, n), "exclude": self.exclusions(cols, n)}

    def probabilities(self, outputs: list[np.ndarray]) -> Ranked:
        """The ONNX outputs (scores, catalogue indices[, precomputed flags]) as item ids."""
        scores = np.asarray(outputs[0], dtype=np.float64)
        index = np.asarray(outputs[1], dtype=np.int64)
        ids = np.where((index >= 0) & (index < self.n_items), self._item_ids[np.clip(index, 0, max(self.n_items - 1, 0))], -1)
        ids = np.where(scores <= NEG_SCORE / 2, -1, ids)  # excluded or padding: never an answer
        flags = np.asarray(outputs[2], dtype=bool) if len(outputs) > 2 else np.zeros(len(ids), dtype=bool)
        return Ranked(ids, scores, flags)

    def predict(self, model: Any, frame: pd.DataFrame) -> Ranked:
        """The torch model's top-K for query rows (``user_id``, profile columns, ``exclude``): the exported graph's computation."""
        torch = _torch()
        module = rank_module(model, self.max_k)
        feeds = self.feeds(frame_columns(frame))
        scores, index = [], []
        with torch.no_grad():
            for i in range(0, len(frame), 1024):
                s, j = module(*(torch.from_numpy(np.ascontiguousarray(feeds[k][i:i + 1024])) for k in ("user_index", "user_features", "exclude")))
                scores.append(s.numpy())
                index.append(j.numpy())
        k = min(self.max_k, self.n_items)
        return self.probabilities([np.concatenate(scores) if scores else np.zeros((0, k)), np.concatenate(index) if index else np.zeros((0, k), np.int64)])

    def score(self, session: Any, cols: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Users with precomputed recommendations (``rec_items`` from Feast) are answered from them; only the others are
        scored live by the ONNX model. Outputs: scores, catalogue indices, precomputed flags."""
        from kindml.model.export import run_onnx

        feeds = self.feeds(cols)
        n = len(feeds["user_index"])
        k = min(self.max_k, self.n_items)
        scores = np.full((n, k), NEG_SCORE, dtype=np.float64)
        index = np.full((n, k), self.n_items, dtype=np.int64)
        recs = cols.get("rec_items")
        rec_scores = cols.get("rec_scores")
        pre = np.array([recs is not None and recs[i] is not None and len(recs[i]) > 0 for i in range(n)], dtype=bool)
        for i in np.nonzero(pre)[0]:
            items = self.item_index(np.asarray(recs[i], dtype=np.int64)[:k])
            vals = np.asarray(rec_scores[i], dtype=np.float64)[:len(items)] if rec_scores is not None and rec_scores[i] is not None else np.zeros(len(items))
            index[i, :len(items)] = items
            scores[i, :len(vals)] = vals
        live = np.nonzero(~pre)[0]
        if len(live):
            out = run_onnx(session, {name: v[live] for name, v in feeds.items()})
            scores[live], index[live] = out[0], out[1]
        return feeds, [scores, index, pre]

    # --- export and serving -------------------------------------------------------------------------

    def onnx_module(self, model: Any) -> OnnxSpec:
        assert self.state is not None
        module = rank_module(model, self.max_k)
        f = len(self.state["user_mean"])
        example = {"user_index": np.array([1, 0], dtype=np.int64), "user_features": np.zeros((2, f), dtype=np.float32),
                   "exclude": np.array([[0, self.n_items, self.n_items], [1, 2, self.n_items]], dtype=np.int64)}
        return OnnxSpec(module, example, ["user_index", "user_features", "exclude"], ["score", "item_index"],
                        dynamic_axes={"exclude": {1: "excluded"}})

    def parity_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop_duplicates("user_id").head(500)

    def quantize(self, onnx_path: Path, feeds: dict[str, np.ndarray], labels: np.ndarray, budget: float, out_dir: Path) -> dict[str, Any]:
        from kindml.errors import ExportError

        raise ExportError("the recommendation model has no INT8 variant: its graph is an embedding gather, one [n, d] x [d, items] matmul "
                          "and a TopK; the output is an ordering, which per-batch activation quantisation reorders, and the TopK "
                          "(not the matmul) dominates its time (benchmarks/batch)",
                          "Leave quantize.enabled off for the recsys workload.")

    def signature(self) -> Any:
        from kindml.pipelines.recsys.serving import RecsysSignature

        assert self.state is not None, "load the kit before asking for its signature"
        return RecsysSignature(self)
