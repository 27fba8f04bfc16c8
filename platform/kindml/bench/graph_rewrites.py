"""Graph rewrites for ONNX Runtime's CPU kernels on a fused transformer graph.

ORT's transformer optimizer fuses ``Add + LayerNormalization`` into the contrib
op ``SkipLayerNormalization`` (with the MatMul's bias as its 5th input) and
``Add + Gelu`` into ``BiasGelu``. On this CPU with ONNX Runtime 1.31 the fused
CPU kernels are *slower* than the operators they replace (MiniLM-L6, batch 32,
sequence 128, one thread, ORT profiler):

- 12 ``SkipLayerNormalization``: 93.6 ms per call; the same work as 12 ``Add``
  + 12 ONNX ``LayerNormalization``: 23.8 ms (14.3 + 9.5);
- on the INT8 dynamic graph, 6 ``BiasGelu``: 47.6 ms; split into ``Add`` +
  ``Gelu`` the bias ``Add`` is folded into the preceding ``DynamicQuantizeMatMul``
  (its bias input) and the ``Gelu`` takes 28.7 ms.

:func:`split_slow_cpu_kernels` undoes those two fusions and keeps the others
(Attention, EmbedLayerNormalization). Outputs agree with the fused graph to
~1e-5. ORT's level-``all`` session optimisations do not re-create
``SkipLayerNormalization`` from the split nodes (they re-create ``BiasGelu`` on
an FP32 graph, where it is as fast as the split pair), so no session option is
needed to keep the gain.

Importing this module does no work (onnx loads on use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kindml.bench.transformer import MS_DOMAIN
from kindml.errors import BenchmarkError

LAYER_NORM_OPSET = 17  # ONNX LayerNormalization


def _onnx_opset(model: Any) -> int:
    return max((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _attr(node: Any, name: str, default: float) -> float:
    for a in node.attribute:
        if a.name == name:
            return float(a.f)
    return default


def split_skip_layernorm(model: Any) -> int:
    """``SkipLayerNormalization(x, skip, gamma[, beta[, bias]])`` → ``Add`` (+ bias ``Add``) + ``LayerNormalization``.

    Rewrites ``model`` (an ``onnx.ModelProto``) in place; returns how many nodes were split. The
    optional 4th output (the pre-norm sum) is kept as the ``Add``'s output; the optional mean /
    inverse-std-dev outputs are not supported (the node is left as it is). Needs ONNX opset >= 17.
    """
    from onnx import helper

    if _onnx_opset(model) < LAYER_NORM_OPSET:
        return 0
    new: list[Any] = []
    n = 0
    for node in model.graph.node:
        outs = list(node.output)
        if node.op_type != "SkipLayerNormalization" or node.domain != MS_DOMAIN or (len(outs) > 1 and any(outs[1:3])):
            new.append(node)
            continue
        ins = list(node.input) + [""] * (5 - len(node.input))
        x, skip, gamma, beta, bias = ins[:5]
        base = node.name or f"skip_layernorm_{n}"
        summed = outs[3] if len(outs) > 3 and outs[3] else f"{base}/sum"
        if bias:  # residual first, bias second: ORT's SkipLayerNormFusion matches bias-first and would re-fuse it
            new.append(helper.make_node("Add", [x, skip], [f"{base}/residual"], name=f"{base}/add_skip"))
            new.append(helper.make_node("Add", [f"{base}/residual", bias], [summed], name=f"{base}/add_bias"))
        else:
            new.append(helper.make_node("Add", [x, skip], [summed], name=f"{base}/add_skip"))
        ln_inputs = [summed, gamma] + ([beta] if beta else [])
        new.append(helper.make_node("LayerNormalization", ln_inputs, [outs[0]], name=f"{base}/layernorm", axis=-1, epsilon=_attr(node, "epsilon", 1e-12)))
        n += 1
    if n:
        del model.graph.node[:]
        model.graph.node.extend(new)
    return n


def split_bias_gelu(model: Any) -> int:
    """``BiasGelu(x, bias)`` → ``Add`` + ``Gelu`` (both erf-exact; ``Gelu`` from com.microsoft). In place; returns the count."""
    from onnx import helper

    new: list[Any] = []
    n = 0
    for node in model.graph.node:
        if node.op_type != "BiasGelu" or node.domain != MS_DOMAIN or len(node.input) != 2:
            new.append(node)
            continue
        base = node.name or f"bias_gelu_{n}"
        new.append(helper.make_node("Add", list(node.input), [f"{base}/biased"], name=f"{base}/add_bias"))
        new.append(helper.make_node("Gelu", [f"{base}/biased"], [node.output[0]], name=f"{base}/gelu", domain=MS_DOMAIN))
        n += 1
    if n:
        del model.graph.node[:]
        model.graph.node.extend(new)
    return n


def split_slow_cpu_kernels(path: Path, out_path: Path | None = None) -> dict[str, Any]:
    """Apply both splits to the ONNX file at ``path`` (written to ``out_path``, default in place).

    Returns ``{"SkipLayerNormalization": n, "BiasGelu": m, "why": ...}``; a graph with neither is
    written unchanged.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"no ONNX model at {path}", "Fuse the model first (kindml.bench.transformer.fuse).")
    model = onnx.load(str(path))
    counts = {"SkipLayerNormalization": split_skip_layernorm(model), "BiasGelu": split_bias_gelu(model)}
    if _onnx_opset(model) < LAYER_NORM_OPSET:
        counts["note"] = f"SkipLayerNormalization kept: the graph's ONNX opset {_onnx_opset(model)} has no LayerNormalization (needs {LAYER_NORM_OPSET})"
    onnx.save(model, str(out_path or path))
    return counts | {"why": "ORT 1.31's CPU SkipLayerNormalization / BiasGelu kernels are slower than Add + LayerNormalization / Gelu (kindml.bench.graph_rewrites)"}
