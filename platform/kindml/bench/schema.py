"""The result document's JSON Schema (``schema_version`` 1) and its validation.

Top level: ``machine`` (CPU model and flags, threads, onnxruntime version and
providers, ...) and ``results``: one record per (model, variant, provider,
batch) that was measured; ``model`` is a case name (the platform's or a
workload's, ``[a-z][a-z0-9_]*``). Variants that could not run are listed in
``skipped`` with the reason, never as fake numbers.
"""

from __future__ import annotations

from typing import Any

from kindml.bench.catalog import MODEL_NAME_PATTERN, SUITES, VARIANTS
from kindml.errors import BenchmarkError

SCHEMA_VERSION = 1

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
# a name pattern, not an enum: workloads bring their own model cases (kindml.bench.cases)
_MODEL = {"type": "string", "pattern": MODEL_NAME_PATTERN}

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "model",
        "variant",
        "provider",
        "batch",
        "throughput_per_s",
        "p50_ms",
        "p99_ms",
        "cv",
        "size_bytes",
        "quality",
        "speedup_vs_fp32",
    ],
    "properties": {
        "model": _MODEL,
        "variant": {"enum": list(VARIANTS)},
        "provider": {"type": "string", "minLength": 1},
        "batch": {"type": "integer", "minimum": 1},
        "throughput_per_s": {"type": "number", "exclusiveMinimum": 0},
        "throughput_mean_per_s": _NUM,
        "p50_ms": {"type": "number", "exclusiveMinimum": 0},
        "p99_ms": {"type": "number", "exclusiveMinimum": 0},
        "mean_ms": _NUM,
        "min_ms": _NUM,
        "cv": {"type": "number", "minimum": 0},
        "noisy": {"type": "boolean"},
        "calls": {"type": "integer", "minimum": 1},
        "repeats": {"type": "integer", "minimum": 1},
        "calls_per_repeat": {"type": "integer", "minimum": 1},
        "size_bytes": {"type": "integer", "minimum": 1},
        "quality": {"type": "object", "minProperties": 1, "additionalProperties": _NUM_OR_NULL},
        "quality_delta": _NUM_OR_NULL,
        "speedup_vs_fp32": _NUM_OR_NULL,
        "speedup_vs_torch": _NUM_OR_NULL,
        "precision": {"enum": ["fp32", "int8", "fp16"]},
        "graph_optimization": {"enum": ["basic", "extended", "all", None]},
        "threads": {"type": "integer", "minimum": 1},
        "io_binding": {"type": "boolean"},
        "note": {"type": "string"},
    },
}

SKIPPED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "variant", "provider", "kind", "reason"],
    "properties": {
        "model": _MODEL,
        "variant": {"enum": list(VARIANTS)},
        "provider": {"type": "string"},
        "kind": {"enum": ["not_available", "not_applicable", "failed"]},
        "reason": {"type": "string", "minLength": 1},
    },
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema_version", "suite", "machine", "results", "skipped", "settings"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "suite": {"enum": list(SUITES)},
        "device": {"enum": ["cpu", "cuda"]},
        "created": {"type": "string"},
        "settings": {
            "type": "object",
            "required": ["batches", "repeats", "warmup", "threads"],
            "properties": {"repeats": {"type": "integer", "minimum": 5}, "threads": {"type": "integer", "minimum": 1}},
        },
        "machine": {
            "type": "object",
            "required": ["cpu_model", "cpu_flags", "isa", "threads", "onnxruntime_version", "providers"],
            "properties": {
                "cpu_model": {"type": "string"},
                "cpu_flags": {"type": "array", "items": {"type": "string"}},
                "isa": {"type": "object", "required": ["avx2", "avx512", "vnni", "amx"]},
                "threads": {"type": "integer", "minimum": 1},
                "onnxruntime_version": {"type": "string"},
                "providers": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
        },
        "models": {"type": "object"},
        "results": {"type": "array", "items": RECORD_SCHEMA},
        "skipped": {"type": "array", "items": SKIPPED_SCHEMA},
        "noisy": {"type": "boolean"},
        "goals": {"type": "array"},
    },
}


def validate_result(doc: dict[str, Any]) -> None:
    """Raise BenchmarkError naming the first problem when ``doc`` does not match the schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(RESULT_SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise BenchmarkError(f"benchmark result does not match schema v{SCHEMA_VERSION} at {where}: {first.message}", "This is a bug in the harness.")
