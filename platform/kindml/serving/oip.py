"""Open Inference Protocol (v2 REST) details the predictor checks before KServe decodes a request.

The binary tensor data extension
    A v2 client may send tensors as raw bytes after the JSON header: header
    ``Inference-Header-Content-Length: N`` says the first ``N`` bytes of the
    body are the JSON request; an input without ``data`` carries
    ``parameters.binary_data_size`` and its bytes follow, in input order.
    Numeric tensors are raw little-endian values (``BOOL`` one byte each);
    ``BYTES`` tensors are elements each prefixed by its length (4-byte
    little-endian unsigned). tritonclient's HTTP client sends inputs this way by
    default. KServe 0.21 decodes such bodies (``InferRequest.from_bytes``) and
    encodes binary outputs (``InferResponse.to_rest``), but it trusts the sizes
    it is given: a truncated or inconsistent body fails inside numpy with a
    500. :func:`binary_request_problem` checks the whole layout first, so every
    malformed body is a 400 that says what is wrong.

Datatypes
    :func:`datatype_problem` compares an input's declared datatype with the
    model metadata's: numeric fields accept any numeric datatype (values are
    validated by the signature), ``BYTES`` fields need ``BYTES``, ``BOOL``
    fields need ``BOOL``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any

HEADER = "inference-header-content-length"
"""The binary tensor extension's header (HTTP header names are case-insensitive)."""

ITEM_SIZE: dict[str, int | None] = {
    "BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8,
    "FP16": 2, "FP32": 4, "FP64": 8, "BYTES": None,
}
"""Every Open Inference Protocol datatype and the byte size of one element (None: length-prefixed)."""

NUMERIC = frozenset(k for k in ITEM_SIZE if k not in ("BOOL", "BYTES"))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows: send finite numbers only (NaN/Infinity are rejected)")


def _shape(value: Any, name: str) -> tuple[list[int] | None, str | None]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        return None, f"input {name!r}: \"shape\" must be a list of non-negative integers, got {value!r}"
    return value, None


def _bytes_elements(raw: memoryview, count: int, name: str) -> str | None:
    """Check a BYTES tensor's length-prefixed elements: exactly ``count`` of them, filling ``raw``, each UTF-8 text."""
    pos, seen = 0, 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            return f"input {name!r}: BYTES element {seen} has a truncated 4-byte length prefix"
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            return f"input {name!r}: BYTES element {seen} says {n} bytes but only {len(raw) - pos} remain in its binary_data_size"
        try:
            bytes(raw[pos:pos + n]).decode("utf-8")
        except UnicodeDecodeError:
            return f"input {name!r}: BYTES element {seen} is not UTF-8 text"
        pos += n
        seen += 1
    if seen != count:
        return f"input {name!r}: shape says {count} elements but its binary data holds {seen}"
    return None


def binary_request_problem(body: bytes, header_length: str) -> str | None:
    """None if ``body`` is a well-formed binary-extension request whose JSON part is ``header_length`` bytes; else why not."""
    hint = f"{HEADER.title()} must be the byte length of the JSON part at the start of the body"
    try:
        n = int(header_length.strip())
    except ValueError:
        return f"{hint}; got {header_length!r}"
    if not 0 < n <= len(body):
        return f"{hint} (1..{len(body)} for this body); got {n}"
    try:
        head = json.loads(body[:n].decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        return f"the first {n} bytes ({HEADER.title()}) are not UTF-8 JSON"
    except ValueError as exc:
        return f"the first {n} bytes ({HEADER.title()}) are not a JSON request: {exc}"
    if not isinstance(head, dict) or not isinstance(head.get("inputs"), list) or not head["inputs"]:
        return 'the JSON part must be an object with a non-empty "inputs" list'
    outputs = head.get("outputs")
    if outputs is not None and not (isinstance(outputs, list) and all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)):
        return '"outputs" must be a list of objects with a "name"'
    if head.get("parameters") is not None and not isinstance(head["parameters"], dict):
        return '"parameters" must be an object'
    binary = memoryview(body)[n:]
    pos = 0
    for i, inp in enumerate(head["inputs"]):
        if not isinstance(inp, dict) or not isinstance(inp.get("name"), str):
            return f"inputs[{i}] must be an object with a \"name\""
        name = inp["name"]
        dtype = inp.get("datatype")
        if dtype not in ITEM_SIZE:
            return f"input {name!r}: datatype {dtype!r} is not an Open Inference Protocol datatype ({', '.join(ITEM_SIZE)})"
        shape, err = _shape(inp.get("shape"), name)
        if err:
            return err
        assert shape is not None
        params = inp.get("parameters")
        if params is not None and not isinstance(params, dict):
            return f"input {name!r}: \"parameters\" must be an object"
        if "data" in inp:
            if inp["data"] is None:
                return f"input {name!r}: \"data\" is null"
            continue
        size = (params or {}).get("binary_data_size")
        if size is None:
            return f"input {name!r} has neither \"data\" nor parameters.binary_data_size"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return f"input {name!r}: parameters.binary_data_size must be a non-negative integer, got {size!r}"
        if pos + size > len(binary):
            return (f"input {name!r}: binary_data_size {size} runs past the end of the body "
                    f"({len(binary) - pos} bytes left after the JSON part and the inputs before it)")
        count = math.prod(shape)
        item = ITEM_SIZE[dtype]
        if item is None:
            err = _bytes_elements(binary[pos:pos + size], count, name)
            if err:
                return err
        elif size != count * item:
            return f"input {name!r}: shape {shape} of {dtype} needs {count * item} bytes, binary_data_size says {size}"
        pos += size
    if pos != len(binary):
        return f"the body has {len(binary) - pos} bytes after the last input's binary data: binary_data_size values do not add up"
    return None


def _family(dtype: str) -> str:
    return "numeric" if dtype in NUMERIC else dtype


def datatype_problem(inputs: Iterable[Any], fields: Mapping[str, str]) -> str | None:
    """None if every known input's datatype fits the field's metadata datatype; else a message naming the first misfit."""
    for inp in inputs:
        name = getattr(inp, "name", None)
        dtype = getattr(inp, "datatype", None)
        want = fields.get(name) if isinstance(name, str) else None
        if want is None or not isinstance(dtype, str):
            continue
        if _family(dtype) != _family(want):
            return (f"input {name!r} has datatype {dtype}; the model expects {want}"
                    f"{' (any numeric datatype)' if want in NUMERIC else ''} — see GET /v2/models/<name> for every input")
    return None


def parse_request(payload: Any, sig: Any, extra_outputs: Iterable[str] = ()) -> tuple[Any, bool]:
    """A predict request (v2 ``InferRequest`` or v1 ``{"instances": [...]}``) parsed by the workload's signature → (Parsed, is_v2).

    One front door for every predictor (plain and experiment), so both accept and refuse the same requests:
    input datatypes against the metadata, requested outputs against the model's outputs plus ``extra_outputs``
    (what the predictor adds, e.g. ``prediction_id``), then the signature's own validation. Raises
    :class:`~kindml.serving.signature.RequestError` (a 400) naming what is wrong.
    """
    from kserve.protocol.infer_type import InferRequest

    from kindml.serving.signature import RequestError

    if isinstance(payload, InferRequest):
        problem = datatype_problem(payload.inputs, sig.fields)
        if problem:
            raise RequestError(problem)
        known = [*sig.outputs, *extra_outputs]
        unknown = [o.name for o in payload.request_outputs or [] if o.name not in known]
        if unknown:
            raise RequestError(f"requested output(s) {', '.join(map(repr, unknown))} unknown; the model's outputs are {', '.join(known)}")
        return sig.parse_v2(payload.inputs), True
    if isinstance(payload, dict):
        if "instances" not in payload:
            raise RequestError(f'the body needs "instances": [{{...{sig.row_name}...}}, ...] (v1) — or use /v2/models/<name>/infer')
        return sig.parse_v1(payload["instances"]), False
    raise RequestError("the body must be a JSON object")
