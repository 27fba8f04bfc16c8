"""The ONNX Runtime optimisation and quantisation benchmark suite (``kindml bench``).

The platform's models (a small CNN on scikit-learn's digits, all-MiniLM-L6-v2)
and any model case a workload contributes (:mod:`~kindml.bench.cases`; the
capstones register theirs in ``kindml.pipelines.BENCH_CASES``) are measured as
PyTorch eager, ORT FP32 at three graph optimisation levels, ORT INT8 (dynamic,
static QDQ, static QOperator), FP16, TensorRT and, for transformer cases, the
fused transformer family (``ort_ts_*``, ``ort_fused_*``), each with a
correctness measure against the FP32 reference. All variants of one model are
measured in the same process, interleaved, so ratios are fair.

Modules: :mod:`~kindml.bench.machine` (CPU, ISA flags, ORT build),
:mod:`~kindml.bench.providers` (which variants can run where),
:mod:`~kindml.bench.cases` (the plug-in interface: what a model case carries;
the platform's cases), :mod:`~kindml.bench.models` (the built case and the
platform's builders :mod:`~kindml.bench.digits`, :mod:`~kindml.bench.minilm`),
:mod:`~kindml.bench.variants` (building ONNX variants and sessions),
:mod:`~kindml.bench.measure` (timing and statistics),
:mod:`~kindml.bench.quality` (correctness metrics and rules), :mod:`~kindml.bench.schema`
(the result schema), :mod:`~kindml.bench.report` (JSON, markdown, plots),
:mod:`~kindml.bench.suite` (orchestration), :mod:`~kindml.bench.quantize`
(the export stage's quantize step for a tabular binary classifier) and
:mod:`~kindml.bench.transformer` (TorchScript export for ORT's transformer
optimizer, fusion, transformer-safe INT8 recipes, the generic variant chooser
``choose_onnx_variant``).

Importing this package does no work.
"""
