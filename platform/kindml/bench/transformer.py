"""Transformer-aware ONNX optimisation and INT8 quantisation, and a chooser over the variants.

Four building blocks, used by ``kindml bench`` (the ``ort_ts_*`` / ``ort_fused_*``
MiniLM variants) and by a capstone's quantize step (:func:`choose_onnx_variant`):

- :func:`export_for_fusion`: the **TorchScript** exporter (``torch.onnx.export(...,
  dynamo=False)``) with dynamic batch and sequence axes, Hugging Face attention
  switched to the ``eager`` implementation while exporting. ONNX Runtime's
  transformer optimizer matches the graph patterns of this exporter; the
  ``torch.export`` (dynamo) graph defeats it (0 Attention fused, see
  ``benchmarks/README.md``).
- :func:`fuse`: ``onnxruntime.transformers.optimizer.optimize_model`` (model
  type ``bert``): Attention, SkipLayerNormalization, BiasGelu,
  EmbedLayerNormalization. The *raw* 2-D attention mask is kept (not ORT's
  default 1-D mask index, which silently assumes right padding), so a fused
  graph is correct whatever side the tokenizer pads. Its callers then undo two
  fusions whose ORT CPU kernels are slower than the plain operators
  (:func:`kindml.bench.graph_rewrites.split_slow_cpu_kernels`).
- :func:`quantize_dynamic_model`: ``quantize_dynamic`` (S8 per-channel weights;
  on a fused graph Attention becomes QAttention) after ``quant_pre_process``.
- :func:`quantize_static_model`: static QDQ that works on transformers. The
  generic recipe (every op, MinMax) gives MiniLM a cosine of 0.40: MinMax gives
  the additive attention mask (0 / -3.4e38) a scale of 1.3e36, and 8-bit
  MatMul *outputs* feed the residual stream with a scale of ~0.8. This recipe
  (a) quantizes **MatMul inputs only** (op type MatMul, outputs not quantized:
  ``OpTypesToExcludeOutputQuantization``), so ORT runs each as
  ``MatMulIntegerToFloat`` with FP32 output; (b) only MatMuls with a constant
  weight (activation x activation products such as Q·Kᵀ stay FP32); (c)
  excludes the **attention-mask path** found by :func:`mask_path_nodes` (every
  node computed from the mask alone, the nodes that add it to activations and
  their direct consumers: the softmax); (d) per-channel S8 weights, U8
  activations (ORT's recommendation for x86 with VNNI), MinMax calibration on
  real inputs; (e) on x86 without VNNI (AVX2 only), ``reduce_range`` (7-bit
  weights), because there ORT's U8 x S8 kernel saturates: a test block's cosine
  drops from 0.9997 to 0.979 without it on an AVX2-only EPYC.

Importing this module does no work (torch, onnx and onnxruntime load on use).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kindml.errors import BenchmarkError, ExportError

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MS_DOMAIN = "com.microsoft"

# The fused operators worth reporting (ORT's get_fused_operator_statistics keys).
FUSION_KEYS: tuple[str, ...] = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "BiasGelu",
    "Gelu",
    "FastGelu",
    "LayerNormalization",
)

STATIC_RECIPE: dict[str, Any] = {
    "api": "quantize_static",
    "format": "QDQ",
    "op_types_to_quantize": ["MatMul"],
    "matmul_const_b_only": True,
    "quantize_matmul_outputs": False,
    "exclude": "attention-mask path (mask-only nodes, the nodes adding the mask to activations, their consumers)",
    "activation_type": "QUInt8",
    "weight_type": "QInt8",
    "per_channel": True,
    "calibration": "MinMax",
}
DYNAMIC_RECIPE: dict[str, Any] = {"api": "quantize_dynamic", "weight_type": "QInt8", "per_channel": True}


# ------------------------------------------------------------------ export


@contextlib.contextmanager
def eager_attention(module: Any) -> Iterator[list[str]]:
    """Switch every Hugging Face submodule to the ``eager`` attention implementation, then restore it.

    SDPA exports extra NaN guards around the softmax that the fusion patterns do not expect.
    """
    changed: list[tuple[Any, str]] = []
    for sub in module.modules():
        config = getattr(sub, "config", None)
        current = getattr(config, "_attn_implementation", None) if config is not None else None
        if current and current != "eager" and hasattr(sub, "set_attn_implementation"):
            sub.set_attn_implementation("eager")
            changed.append((sub, current))
    try:
        yield [type(sub).__name__ for sub, _ in changed]
    finally:
        for sub, impl in changed:
            with contextlib.suppress(Exception):
                sub.set_attn_implementation(impl)


def export_for_fusion(
    module: Any,
    example_inputs: Mapping[str, Any],
    path: Path,
    opset: int = DEFAULT_OPSET,
    output_names: Sequence[str] = ("logits",),
) -> Path:
    """Export ``module`` with the TorchScript exporter for ORT's transformer optimizer.

    ``example_inputs``: name → tensor, in the order of ``module.forward``'s arguments (for a text
    model ``{"input_ids": ..., "attention_mask": ...}``, int64 ``[batch, seq]``). Axis 0 of every
    input and output is dynamic (``batch``), axis 1 of 2-D or larger inputs too (``sequence``).
    """
    import onnx
    import torch

    from kindml.bench.onnx_export import quiet_torch_export

    if not example_inputs:
        raise ExportError("export_for_fusion needs at least one example input", "Pass e.g. {'input_ids': ..., 'attention_mask': ...}.")
    names = list(example_inputs)
    args = tuple(example_inputs[n] for n in names)
    for name, tensor in zip(names, args, strict=True):
        if not isinstance(tensor, torch.Tensor):
            raise ExportError(f"example input {name!r} is a {type(tensor).__name__}, not a torch.Tensor", "Convert it with torch.from_numpy(...).")
    dynamic_axes: dict[str, dict[int, str]] = {n: ({0: "batch", 1: "sequence"} if t.dim() >= 2 else {0: "batch"}) for n, t in zip(names, args, strict=True)}
    for out in output_names:
        dynamic_axes[out] = {0: "batch"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = bool(getattr(module, "training", False))
    module.eval()
    try:
        with eager_attention(module), quiet_torch_export(), torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=names,
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,
            )
    except Exception as exc:
        raise ExportError(
            f"TorchScript export to {path.name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}",
            "export_for_fusion needs a module whose forward takes the example inputs positionally, in order, and returns as many tensors as output_names.",
        ) from exc
    finally:
        if was_training:
            module.train()
    onnx.checker.check_model(str(path))
    return path


# ------------------------------------------------------------------ fusion


def fuse(onnx_path: Path, out_path: Path, num_heads: int, hidden_size: int, model_type: str = "bert") -> dict[str, int]:
    """ORT's transformer optimizer on ``onnx_path`` → ``out_path``; returns the fused-operator counts.

    Python fusions only (``opt_level=0``): ORT's own graph optimisations run when a session loads
    the file. The raw attention mask is kept (any padding side works).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    if num_heads <= 0 or hidden_size <= 0 or hidden_size % num_heads:
        raise BenchmarkError(f"fuse: num_heads {num_heads} and hidden_size {hidden_size} do not fit", "Use the model config's num_attention_heads and hidden_size.")
    options = FusionOptions(model_type)
    options.use_raw_attention_mask(True)
    opt_logger = logging.getLogger("onnxruntime.transformers")
    level = opt_logger.level
    opt_logger.setLevel(logging.ERROR)
    try:
        optimizer = optimize_model(str(onnx_path), model_type=model_type, num_heads=num_heads, hidden_size=hidden_size, optimization_options=options, opt_level=0)
    except Exception as exc:
        raise BenchmarkError(f"ORT's transformer optimizer failed on {Path(onnx_path).name}: {type(exc).__name__}: {exc}", "Export with export_for_fusion (TorchScript exporter).") from exc
    finally:
        opt_logger.setLevel(level)
    counts = {str(k): int(v) for k, v in optimizer.get_fused_operator_statistics().items()}
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    optimizer.save_model_to_file(str(out_path))
    return counts


# Reductions whose output shape ONNX Runtime's symbolic shape inference loses at opset >= 18 (axes became an
# input and only Unsqueeze gets its constant inputs; onnxruntime PR #32376). ReduceSum/Mean/Prod have handlers.
SHAPE_LOSING_REDUCTIONS: tuple[str, ...] = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMin", "ReduceSumSquare")


def fusion_blockers(onnx_path: Path) -> list[str]:
    """Known reasons the transformer optimizer cannot fuse attention in this graph (empty: none known)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    found = sorted({n.op_type for n in model.graph.node if n.op_type in SHAPE_LOSING_REDUCTIONS})
    if opset >= 18 and found:
        return [f"{', '.join(found)} at opset {opset}: ONNX Runtime's symbolic shape inference loses their output shape "
                "(axes are an input since opset 18), so the fusions that need shapes do not match; export at opset 17, "
                "or write the reduction with ReduceSum (e.g. an L2 norm as sqrt(sum(x*x)))"]
    return []


def fusion_summary(counts: Mapping[str, int]) -> dict[str, Any]:
    """The fused-operator counts that matter and whether the encoder is fully fused.

    Fully fused = at least one Attention, as many GELU as Attention, at least two (Skip)LayerNorms
    per Attention and an EmbedLayerNormalization (the criterion of ORT's ``is_fully_optimized``).
    """
    c = {k: int(counts.get(k, 0) or 0) for k in FUSION_KEYS}
    attention = c["Attention"] + c["MultiHeadAttention"]
    gelu = c["BiasGelu"] + c["Gelu"] + c["FastGelu"]
    norms = c["SkipLayerNormalization"] + c["LayerNormalization"]
    fully = attention > 0 and gelu == attention and norms >= 2 * attention and c["EmbedLayerNormalization"] > 0
    return {"fused": {k: v for k, v in c.items() if v}, "attention": attention, "fully_fused": bool(fully)}


# ------------------------------------------------------------------ graph analysis


def name_nodes(model: Any, prefix: str = "kindml") -> int:
    """Give every unnamed node a unique name (exclusion lists refer to nodes by name); returns how many."""
    used = {n.name for n in model.graph.node if n.name}
    named = 0
    for i, node in enumerate(model.graph.node):
        if node.name:
            continue
        name = f"{prefix}_{node.op_type}_{i}"
        while name in used:
            name += "_"
        node.name = name
        used.add(name)
        named += 1
    return named


def mask_inputs_of(model: Any) -> list[str]:
    """Graph inputs that look like attention masks (the name contains ``mask``)."""
    return [i.name for i in model.graph.input if "mask" in i.name.lower()]


def mask_path_nodes(model: Any, mask_inputs: Sequence[str] | None = None) -> dict[str, list[str]]:
    """The nodes of the attention-mask path, by node name (graph nodes are in topological order).

    - ``mask_only``: computed from the mask inputs alone (shape computations and constants aside),
      e.g. Cast → Sub(1, m) → Mul(-3.4e38) or Where(m, 0, -inf);
    - ``consumers``: nodes that combine a mask-only tensor with other activations (the softmax-bias
      Add of each attention layer, the pooling Mul/Div) — their outputs carry the mask's extreme values;
    - ``after``: direct consumers of those outputs (the Softmax).

    Static calibration must not see these tensors: MinMax over 0 and -3.4e38 gives a scale of ~1e36.
    """
    masks = list(mask_inputs) if mask_inputs is not None else mask_inputs_of(model)
    g = model.graph
    constant = {t.name for t in g.initializer}
    shape_like: set[str] = set()
    derived: set[str] = set(masks)
    only: list[str] = []
    consumers: list[str] = []
    consumer_outputs: set[str] = set()
    after: list[str] = []
    for node in g.node:
        ins = [i for i in node.input if i]
        if node.op_type == "Constant" or (ins and all(i in constant for i in ins)):
            constant.update(node.output)
            continue
        if node.op_type == "Shape" or (ins and all(i in constant or i in shape_like for i in ins)):
            shape_like.update(node.output)
            continue
        acts = [i for i in ins if i not in constant and i not in shape_like]
        if any(i in consumer_outputs for i in acts):
            after.append(node.name)
        if acts and all(i in derived for i in acts):
            derived.update(node.output)
            only.append(node.name)
        elif any(i in derived for i in acts):
            consumers.append(node.name)
            consumer_outputs.update(node.output)
    return {"mask_inputs": masks, "mask_only": only, "consumers": consumers, "after": [n for n in after if n not in consumers and n not in only]}


def activation_matmuls(model: Any) -> list[str]:
    """MatMul nodes without a constant (initializer) operand: activation x activation (Q·Kᵀ, P·V)."""
    constant = {t.name for t in model.graph.initializer}
    constant.update(o for n in model.graph.node if n.op_type == "Constant" for o in n.output)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and not any(i in constant for i in n.input)]


def has_contrib_ops(model: Any) -> bool:
    return any(n.domain == MS_DOMAIN for n in model.graph.node)


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for n in onnx.load(str(path), load_external_data=False).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# ------------------------------------------------------------------ quantization


def _preprocess(src: Path, dst: Path) -> str:
    """``quant_pre_process`` (symbolic shape inference, auto-merged dims) with fallbacks; names every node.

    ORT's optimisation step is skipped on graphs with contrib ops (a fused graph): it is already optimised.
    """
    import onnx
    from onnxruntime.quantization import quant_pre_process

    model = onnx.load(str(src))
    name_nodes(model)
    fused = has_contrib_ops(model)
    try:
        quant_pre_process(model, str(dst), skip_optimization=fused, auto_merge=True)
        note = "quant_pre_process (symbolic shape inference" + (", no re-optimisation of the fused graph)" if fused else ", ORT basic optimisation, shape inference)")
    except Exception as exc:  # symbolic shape inference does not know every exported pattern
        log.info("symbolic shape inference failed on %s (%s); retrying without it", src.name, exc)
        quant_pre_process(model, str(dst), skip_optimization=fused, skip_symbolic_shape=True)
        note = f"quant_pre_process without symbolic shape inference (it failed: {type(exc).__name__})"
    processed = onnx.load(str(dst))
    if name_nodes(processed):
        onnx.save(processed, str(dst))
    return note


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_dynamic_model(src: Path, dst: Path) -> dict[str, Any]:
    """INT8 dynamic (S8 per-channel weights); on a fused graph Attention → QAttention. Returns the recipe."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    t0 = time.perf_counter()
    pre = Path(dst).with_suffix(".pre.onnx")
    with _quiet():
        note = _preprocess(Path(src), pre)
        quantize_dynamic(str(pre), str(dst), per_channel=True, weight_type=QuantType.QInt8)
    pre.unlink(missing_ok=True)
    return DYNAMIC_RECIPE | {"preprocess": note, "build_seconds": round(time.perf_counter() - t0, 2)}


def static_exclusions(model: Any, mask_inputs: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Nodes the static recipe keeps in FP32: the attention-mask path and activation x activation MatMuls."""
    path = mask_path_nodes(model, mask_inputs)
    return {"mask_path": path["mask_only"] + path["consumers"] + path["after"], "activation_matmuls": activation_matmuls(model)}


def quantize_static_model(
    src: Path,
    dst: Path,
    calib_feeds: Sequence[Mapping[str, np.ndarray]],
    mask_inputs: Sequence[str] | None = None,
    method: str = "MinMax",
    reduce_range: bool | None = None,
) -> dict[str, Any]:
    """Static QDQ with the transformer recipe (module docstring); returns the recipe with what was excluded.

    ``reduce_range=None`` decides from this machine's CPU (:attr:`CpuInfo.u8s8_saturates`).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from kindml.bench.variants import calibration_reader

    if not calib_feeds:
        raise BenchmarkError("static quantisation needs calibration inputs", "Pass a few batches of real inputs (e.g. 64 tokenised sentences).")
    if reduce_range is None:
        from kindml.bench.machine import read_cpuinfo

        reduce_range = read_cpuinfo().u8s8_saturates
    t0 = time.perf_counter()
    pre = Path(dst).with_suffix(".pre.onnx")
    with _quiet():
        note = _preprocess(Path(src), pre)
        model = onnx.load(str(pre))
        excl = static_exclusions(model, mask_inputs)
        nodes = sorted(set(excl["mask_path"]) | set(excl["activation_matmuls"]))
        quantize_static(
            str(pre),
            str(dst),
            calibration_reader([dict(f) for f in calib_feeds]),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=nodes,
            reduce_range=reduce_range,
            calibrate_method=getattr(CalibrationMethod, method),
            extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]},
        )
    pre.unlink(missing_ok=True)
    rows = sum(int(next(iter(f.values())).shape[0]) for f in calib_feeds)
    return STATIC_RECIPE | {
        "calibration": method,
        "calibration_samples": rows,
        "reduce_range": reduce_range,
        "excluded_mask_path_nodes": len(excl["mask_path"]),
        "excluded_activation_matmuls": len(excl["activation_matmuls"]),
        "preprocess": note,
        "build_seconds": round(time.perf_counter() - t0, 2),
    }


# ------------------------------------------------------------------ the chooser

CANDIDATE_ORDER: tuple[str, ...] = (
    "ort_fp32_all",
    "ort_fused_fp32",
    "ort_int8_dynamic",
    "ort_fused_int8_dynamic",
    "ort_int8_static_qdq",
    "ort_fused_int8_static_qdq",
)
DEFAULT_BATCHES: tuple[int, ...] = (1, 32)
CHUNK = 32


def _geo_mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return round(float(math.exp(sum(math.log(v) for v in vals) / len(vals))), 4) if vals else None


def pick(
    candidates: Mapping[str, dict[str, Any]],
    budget: float,
    min_speedup: float,
    baseline: str = "ort_fp32_all",
    requirements: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """(chosen variant, reason) from measured candidates, a pure function of their figures.

    A candidate is eligible when it was built, its ``quality_loss`` is <= ``budget``, every figure
    named in ``requirements`` (``quality[name] >= floor``) holds, and its geometric-mean speed-up
    over the baseline is >= ``min_speedup`` (so timing noise cannot pick a variant that is not
    really faster). The fastest eligible one wins; none → the baseline. Sets ``within_budget``,
    ``eligible`` (and ``failed_requirements`` when some are not met) on every candidate.
    """
    for name, c in candidates.items():
        loss = c.get("quality_loss")
        failed = []
        for key, floor in (requirements or {}).items():
            value = (c.get("quality") or {}).get(key)
            if value is None or not math.isfinite(value) or value < floor:
                failed.append(f"{key} {value} < {floor}")
        if failed and "error" not in c:
            c["failed_requirements"] = failed
        c["within_budget"] = bool(loss is not None and math.isfinite(loss) and loss <= budget and not failed)
        speed = c.get("speedup_geo_mean") or 0.0
        c["eligible"] = "error" not in c and (name == baseline or (c["within_budget"] and speed >= min_speedup))
    eligible = [n for n, c in candidates.items() if n != baseline and c["eligible"]]
    if not eligible:
        return baseline, f"no variant is both within the quality budget ({budget}) and at least {min_speedup:.2f}x faster than {baseline}"
    best = max(eligible, key=lambda n: candidates[n]["speedup_geo_mean"])
    c = candidates[best]
    return best, f"fastest variant within the quality budget: {c['speedup_geo_mean']}x geometric-mean speed-up over {baseline}, quality loss {c['quality_loss']:.6g} <= {budget}"


def _feeds_rows(feeds: Mapping[str, np.ndarray]) -> int:
    sizes = {int(np.asarray(v).shape[0]) for v in feeds.values()}
    if len(sizes) != 1:
        raise BenchmarkError(f"evaluation inputs have different numbers of rows: {sorted(sizes)}", "Every input needs the same batch dimension.")
    return sizes.pop()


def _take(feeds: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(np.asarray(v)[idx]) for k, v in feeds.items()}


def trim_padding(feeds: Mapping[str, np.ndarray], mask_input: str = "attention_mask") -> dict[str, np.ndarray]:
    """Drop the trailing sequence positions that are padding in every row (mask 0 everywhere).

    What a server does when it pads each batch to its longest text: pass as ``prepare`` to
    :func:`choose_onnx_variant` so quality and timing see batch-sized sequence lengths. Inputs with
    the mask's sequence length on axis 1 are cut; the others (e.g. a per-row context) are kept.
    Safe for any padding side: only positions that are padding in every row go.
    """
    mask = np.asarray(feeds[mask_input])
    if mask.ndim != 2 or mask.shape[1] == 0:
        return dict(feeds)
    used = np.flatnonzero(mask.any(axis=0))
    width = int(used[-1]) + 1 if len(used) else 1
    seq = mask.shape[1]
    return {k: (np.ascontiguousarray(np.asarray(v)[:, :width]) if np.ndim(v) >= 2 and np.shape(v)[1] == seq and np.shape(v)[0] == mask.shape[0] else v)
            for k, v in feeds.items()}


def choose_onnx_variant(
    fp32_path: Path,
    calib_feeds: list[dict[str, np.ndarray]],
    eval_feeds: dict[str, np.ndarray],
    quality_loss: Callable[[np.ndarray, np.ndarray], float],
    budget: float,
    out_dir: Path,
    *,
    transformer: dict[str, Any] | None = None,
    threads: int = 1,
    batches: tuple[int, ...] = DEFAULT_BATCHES,
    repeats: int = 5,
    min_block_ms: float = 20.0,
    min_speedup: float = 1.05,
    metric: str = "quality_loss",
    prepare: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
    figures: Callable[[list[np.ndarray], list[np.ndarray]], Mapping[str, float]] | None = None,
    requirements: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Build the ONNX variants of ``fp32_path``, check and time them side by side, keep the best.

    - ``calib_feeds``: batches of real inputs (name → array) for static calibration;
    - ``eval_feeds``: held-out inputs (name → array, same number of rows each); each variant's first
      output on them is compared with the FP32 model's by ``quality_loss(variant, fp32) -> float``
      (0 = identical, e.g. ``1 - mean cosine`` or a metric drop) and must be <= ``budget``;
    - ``transformer``: ``{"num_heads": ..., "hidden_size": ..., "model_type": "bert",
      "mask_inputs": [...]}`` for an encoder exported with :func:`export_for_fusion` — adds the
      fused family (ORT transformer optimizer) and runs static QDQ on the fused graph; None: FP32,
      INT8 dynamic and static QDQ of the file as it is.

    Candidates: ``ort_fp32_all`` (the file as given), ``ort_int8_dynamic``, and with ``transformer``
    ``ort_fused_fp32`` (fused, then ``split_slow_cpu_kernels``), ``ort_fused_int8_dynamic``, ``ort_fused_int8_static_qdq`` (else
    ``ort_int8_static_qdq``). All are timed interleaved at ``batches`` with ``threads`` intra-op
    threads. Writes ``out_dir/model.onnx`` (the choice; the source's metadata kept plus
    ``kindml.quantization``) and ``out_dir/quantization.json`` (every candidate's figures, the fusion
    counts, the reason); returns the same dict.

    - ``prepare``: applied to every evaluation chunk and timing batch before it is fed (e.g.
      :func:`trim_padding`, so a batch is as long as its longest text, as a server sends it);
    - ``figures(outputs, fp32_outputs) -> {name: value}``: more quality figures from *all* outputs
      (recorded in each candidate's ``quality``); ``requirements``: ``{name: floor}`` a candidate's
      figures must reach to be eligible (e.g. top-class agreement, embedding cosine).

    Every candidate must keep the FP32 file's input and output names (a variant that loses an output
    is recorded with an error, never chosen).
    """
    import onnx
    import onnxruntime as ort

    from kindml.bench.catalog import CPU_EP, VARIANTS
    from kindml.bench.graph_rewrites import split_slow_cpu_kernels
    from kindml.bench.machine import read_cpuinfo
    from kindml.bench.measure import measure_interleaved, speedup
    from kindml.bench.quantize import QUANTIZATION_FILE
    from kindml.bench.variants import make_session, ort_timer

    fp32_path = Path(fp32_path)
    out_dir = Path(out_dir)
    if not fp32_path.is_file():
        raise BenchmarkError(f"no ONNX model at {fp32_path}", "Export the model first (export_for_fusion for a transformer).")
    if not (budget >= 0 and math.isfinite(budget)):
        raise BenchmarkError(f"quality budget {budget} must be a finite number >= 0", "Use the largest allowed quality loss, e.g. 0.01 for 1 - cosine.")
    if threads < 1:
        raise BenchmarkError(f"threads {threads}: must be at least 1", "Use 1 (per-core figures) or the serving pod's CPU count.")
    n_eval = _feeds_rows(eval_feeds)
    if n_eval == 0 or not calib_feeds:
        raise BenchmarkError("need calibration batches and at least one evaluation row", "Pass a few batches of training inputs and held-out inputs.")
    if transformer is not None:
        missing = [k for k in ("num_heads", "hidden_size") if not transformer.get(k)]
        if missing:
            raise BenchmarkError(f"transformer settings lack {', '.join(missing)}", "Pass {'num_heads': config.num_attention_heads, 'hidden_size': config.hidden_size}.")
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "quantize-work"
    work.mkdir(parents=True, exist_ok=True)
    mask_inputs = (transformer or {}).get("mask_inputs")

    builders: dict[str, Callable[[], tuple[Path, dict[str, Any]]]] = {"ort_fp32_all": lambda: (fp32_path, {})}
    fused_path = work / "model.fused.onnx"
    fusion: dict[str, Any] = {}

    def build_fused() -> tuple[Path, dict[str, Any]]:
        assert transformer is not None
        counts = fuse(fp32_path, fused_path, int(transformer["num_heads"]), int(transformer["hidden_size"]), transformer.get("model_type", "bert"))
        fusion.update(fusion_summary(counts) | {"counts": counts})
        if fusion["attention"]:
            fusion["split_after_fusion"] = split_slow_cpu_kernels(fused_path)
        else:
            blockers = fusion_blockers(fp32_path)
            fusion["blockers"] = blockers
            raise BenchmarkError(f"ORT's transformer optimizer fused no Attention in {fp32_path.name}: {fusion['fused']}" + (f" ({blockers[0]})" if blockers else ""),
                                 "Export with export_for_fusion (TorchScript exporter, eager attention).")
        return fused_path, {"api": "onnxruntime.transformers.optimizer.optimize_model", "fusion": fusion["fused"]}

    builders["ort_int8_dynamic"] = lambda: (work / "model.int8_dynamic.onnx", quantize_dynamic_model(fp32_path, work / "model.int8_dynamic.onnx"))
    if transformer is not None:
        builders["ort_fused_fp32"] = build_fused
        builders["ort_fused_int8_dynamic"] = lambda: (work / "model.fused.int8_dynamic.onnx", quantize_dynamic_model(fused_path, work / "model.fused.int8_dynamic.onnx"))
        builders["ort_fused_int8_static_qdq"] = lambda: (work / "model.fused.int8_qdq.onnx", quantize_static_model(fused_path, work / "model.fused.int8_qdq.onnx", calib_feeds, mask_inputs))
    else:
        builders["ort_int8_static_qdq"] = lambda: (work / "model.int8_qdq.onnx", quantize_static_model(fp32_path, work / "model.int8_qdq.onnx", calib_feeds, mask_inputs))

    candidates: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    recipes: dict[str, Any] = {}
    sessions: dict[str, Any] = {}
    timing: dict[str, dict[int, Any]] = {}
    try:
        for name in [n for n in CANDIDATE_ORDER if n in builders]:
            try:
                if name.startswith("ort_fused_") and name != "ort_fused_fp32" and "ort_fused_fp32" not in paths:
                    raise BenchmarkError(f"the fused graph was not built: {candidates.get('ort_fused_fp32', {}).get('error', '?')}")
                path, recipe = builders[name]()
                sessions[name] = make_session(path, VARIANTS[name], CPU_EP, threads)
            except BenchmarkError as exc:
                candidates[name] = {"variant": name, "error": exc.message}
                continue
            except Exception as exc:  # a failed recipe is a recorded outcome, never a crash of the step
                candidates[name] = {"variant": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:240] if str(exc) else ''}"}
                continue
            paths[name] = path
            if recipe:
                recipes[name] = recipe
            candidates[name] = {"variant": name, "size_bytes": path.stat().st_size}
        if "ort_fp32_all" not in sessions:
            raise BenchmarkError(f"the FP32 model {fp32_path} does not load in ONNX Runtime: {candidates['ort_fp32_all'].get('error')}", "Check the export.")

        def signature(sess: Any) -> tuple[list[str], list[str]]:
            return sorted(i.name for i in sess.get_inputs()), [o.name for o in sess.get_outputs()]

        expected = signature(sessions["ort_fp32_all"])
        for name in [n for n in sessions if n != "ort_fp32_all"]:
            got = signature(sessions[name])
            if got != expected:
                candidates[name]["error"] = f"inputs/outputs {got} differ from the FP32 model's {expected}"
                del sessions[name]
        shape = prepare or (lambda feeds: feeds)
        chunks = [shape(_take(eval_feeds, np.arange(i, min(i + CHUNK, n_eval)))) for i in range(0, n_eval, CHUNK)]
        n_outputs = len(expected[1])

        def run_all(sess: Any) -> list[np.ndarray]:
            outs = [sess.run(None, c) for c in chunks]
            return [np.concatenate([np.asarray(o[k]) for o in outs], axis=0) for k in range(n_outputs)]

        reference = run_all(sessions["ort_fp32_all"])
        for name, sess in sessions.items():
            outs = run_all(sess)
            loss = float(quality_loss(outs[0], reference[0]))
            candidates[name]["quality_loss"] = round(loss, 8) if math.isfinite(loss) else loss
            candidates[name]["quality"] = {metric: candidates[name]["quality_loss"]}
            if figures is not None:
                candidates[name]["quality"] |= {k: (round(float(v), 8) if v is not None and math.isfinite(v) else v) for k, v in figures(outs, reference).items()}
        timing = {name: {} for name in sessions}
        for batch in batches:
            feeds = shape(_take(eval_feeds, np.arange(batch) % n_eval))
            stats = measure_interleaved({n: ort_timer(s, feeds, CPU_EP) for n, s in sessions.items()}, batch, 2, repeats, min_block_ms, 5_000, 0.10)
            for name, st in stats.items():
                timing[name][batch] = st
    finally:
        sessions.clear()
    for name, per_batch in timing.items():
        c = candidates[name]
        c["timing"] = {str(b): {"p50_ms": st.p50_ms, "p99_ms": st.p99_ms, "throughput_per_s": st.throughput_per_s, "cv": st.cv, "noisy": st.noisy} for b, st in per_batch.items()}
        c["speedup_vs_fp32"] = {str(b): speedup(st.throughput_per_s, timing["ort_fp32_all"][b].throughput_per_s) for b, st in per_batch.items()}
        c["speedup_geo_mean"] = _geo_mean(list(c["speedup_vs_fp32"].values()))
    chosen, reason = pick(candidates, budget, min_speedup, requirements=requirements)
    target = out_dir / "model.onnx"
    props = {p.key: p.value for p in onnx.load(str(fp32_path), load_external_data=False).metadata_props}
    if chosen == "ort_fp32_all":
        if target.resolve() != fp32_path.resolve():
            shutil.copy2(fp32_path, target)
    else:
        if target.resolve() == fp32_path.resolve():
            shutil.copy2(fp32_path, out_dir / "model.fp32.onnx")
        model = onnx.load(str(paths[chosen]))
        onnx.helper.set_model_props(model, props | {"kindml.quantization": chosen})
        onnx.save(model, str(target))
    cpu = read_cpuinfo()
    result: dict[str, Any] = {
        "chosen": chosen,
        "reason": reason,
        "onnx_path": str(target),
        "source_onnx": str(fp32_path),
        "accuracy_budget": budget,
        "metric": metric,
        "min_speedup": min_speedup,
        "requirements": dict(requirements or {}),
        "candidates": list(candidates.values()),
        "recipes": recipes,
        "fusion": fusion,
        "settings": {
            "batches": list(batches),
            "repeats": repeats,
            "threads": threads,
            "min_block_ms": min_block_ms,
            "calibration_batches": len(calib_feeds),
            "calibration_rows": int(sum(_feeds_rows(f) for f in calib_feeds)),
            "eval_rows": n_eval,
            "transformer": dict(transformer) if transformer else None,
        },
        "machine": {"cpu_model": cpu.model, "cpu_flags": list(cpu.flags), "isa": cpu.isa, "onnxruntime_version": ort.__version__},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out_dir / QUANTIZATION_FILE).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return result


def cosine_loss(output: np.ndarray, reference: np.ndarray) -> float:
    """``1 - mean row cosine similarity`` (a ``quality_loss`` for embeddings or logits)."""
    from kindml.bench.quality import cosine_rows

    return float(1.0 - np.mean(cosine_rows(np.asarray(output).reshape(len(output), -1), np.asarray(reference).reshape(len(reference), -1))))
