"""The Open Inference Protocol's binary tensor extension as real clients encode it, and the checks in front of KServe.

Request bodies come from tritonclient's own encoder (``generate_request_body``,
what ``InferenceServerClient.infer`` sends) and KServe's own client types;
they are decoded with KServe 0.21's ``InferRequest.from_bytes`` (what the
server runs) and answers with tritonclient's ``parse_response_body``.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from kindml.serving.oip import binary_request_problem, datatype_problem

pytestmark = pytest.mark.unit

TEXT = "Je n'arrive pas à me connecter ☹ — 登录失败"


def _triton_inputs(binary: bool = True) -> list:
    import tritonclient.http as th

    cols = {"account_id": ("INT64", np.array([3, 9], dtype=np.int64)), "amount": ("FP64", np.array([12.5, 0.25])),
            "text": ("BYTES", np.array([TEXT, "ok"], dtype=object)), "flag": ("BOOL", np.array([True, False])),
            "hour": ("INT32", np.array([1, 23], dtype=np.int32))}
    out = []
    for name, (dtype, values) in cols.items():
        i = th.InferInput(name, list(values.shape), dtype)
        i.set_data_from_numpy(values, binary_data=binary if name != "hour" else False)
        out.append(i)
    return out


def _kserve_decode(body: bytes, json_len: int) -> dict:
    from kserve.protocol.infer_type import InferRequest

    req = InferRequest.from_bytes(body, json_len, "m")
    return {i.name: (i.datatype, i.shape, i.data) for i in req.inputs}


def test_tritonclient_default_request_is_accepted_and_kserve_decodes_it() -> None:
    import tritonclient.http as th

    body, json_len = th.InferenceServerClient.generate_request_body(_triton_inputs())
    assert json_len is not None and json_len < len(body)  # binary tensors follow the JSON
    head = json.loads(body[:json_len])
    assert head["parameters"] == {"binary_data_output": True}  # no outputs named: the client asks for binary outputs
    assert all("data" not in i for i in head["inputs"] if i["name"] != "hour")
    assert binary_request_problem(body, str(json_len)) is None
    got = _kserve_decode(body, json_len)
    assert got["account_id"] == ("INT64", [2], [3, 9])
    assert got["amount"] == ("FP64", [2], [12.5, 0.25])
    assert got["text"] == ("BYTES", [2], [TEXT, "ok"])  # UTF-8 text survives the length-prefixed encoding
    assert got["flag"] == ("BOOL", [2], [True, False])
    assert got["hour"] == ("INT32", [2], [1, 23])  # JSON data mixed with binary inputs


def test_kserve_client_binary_request_is_accepted() -> None:
    from kserve.protocol.infer_type import InferInput, InferRequest

    a = InferInput("amount", [3], "FP64")
    a.set_data_from_numpy(np.array([1.0, 2.0, 3.0]), binary_data=True)
    t = InferInput("text", [3], "BYTES")
    t.set_data_from_numpy(np.array(["a", "", TEXT], dtype=object), binary_data=True)
    body, json_len = InferRequest(model_name="m", infer_inputs=[a, t]).to_rest()
    assert isinstance(body, bytes) and binary_request_problem(body, str(json_len)) is None
    assert _kserve_decode(body, json_len)["text"][2] == ["a", "", TEXT]


def _body(inputs: list[dict], binary: bytes, extra: dict | None = None) -> tuple[bytes, str]:
    head = json.dumps({"inputs": inputs, **(extra or {})}).encode()
    return head + binary, str(len(head))


def _bytes_el(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(x)) + x for x in items)


F64 = {"name": "amount", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}
TXT = {"name": "text", "shape": [2], "datatype": "BYTES"}

MALFORMED = {
    "header not a number": (b'{"inputs": []}', "twelve", "byte length"),
    "header zero": (b'{"inputs": []}', "0", "byte length"),
    "header past the body": (b'{"inputs": []}', "99", "byte length"),
    "json part cut": (b'{"inputs": [{"name"', "12", "not a JSON request"),
    "json part not utf8": (b"\xff\xfe{}", "4", "UTF-8"),
    "nan in json": (*_body([{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], b"", {"parameters": {"t": float("nan")}}), "NaN"),
    "no inputs": (*_body([], b""), "non-empty \"inputs\""),
    "input not object": (*_body([7], b""), "inputs[0]"),  # type: ignore[list-item]
    "unknown datatype": (*_body([{**F64, "datatype": "FLOAT64"}], bytes(16)), "not an Open Inference Protocol datatype"),
    "negative shape": (*_body([{**F64, "shape": [-1]}], bytes(16)), "non-negative"),
    "no data nor size": (*_body([{"name": "amount", "shape": [2], "datatype": "FP64"}], bytes(16)), "neither"),
    "size not an int": (*_body([{**F64, "parameters": {"binary_data_size": "16"}}], bytes(16)), "non-negative integer"),
    "size off the shape": (*_body([{**F64, "parameters": {"binary_data_size": 12}}], bytes(12)), "needs 16 bytes"),
    "size past the end": (*_body([F64], bytes(8)), "runs past the end"),
    "bytes left over": (*_body([F64], bytes(20)), "4 bytes after"),
    "bytes prefix cut": (*_body([{**TXT, "parameters": {"binary_data_size": 7}}], _bytes_el(b"a") + b"\x01\x00"), "truncated"),
    "bytes element too long": (*_body([{**TXT, "parameters": {"binary_data_size": 9}}], _bytes_el(b"a") + struct.pack("<I", 50)),
                               "says 50 bytes"),
    "bytes not utf8": (*_body([{**TXT, "parameters": {"binary_data_size": 13}}], _bytes_el(b"ok", b"\xff\xfe\xfd")), "not UTF-8"),
    "bytes count off": (*_body([{**TXT, "parameters": {"binary_data_size": 5}}], _bytes_el(b"a")), "shape says 2 elements"),
    "outputs not objects": (*_body([F64], bytes(16), {"outputs": ["score"]}), '"outputs"'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_binary_requests_are_named(case: str) -> None:
    body, header, needle = MALFORMED[case]
    problem = binary_request_problem(body, header)
    assert problem is not None and needle in problem, (case, problem)


@pytest.mark.parametrize("case", ["size past the end", "bytes left over", "bytes prefix cut", "bytes not utf8", "bytes count off", "size off the shape"])
def test_kserve_alone_would_not_answer_these_with_a_400(case: str) -> None:
    """Why the check exists: KServe 0.21 decodes these without complaint or fails outside InvalidInput (a 500)."""
    from kserve.errors import InvalidInput

    body, header, _ = MALFORMED[case]
    try:
        got = _kserve_decode(body, int(header))
    except InvalidInput:
        pytest.fail(f"{case}: KServe answers this with a 400 itself; the check would be redundant")
    except Exception:  # noqa: BLE001 - any other exception is a 500 from KServe's generic handler
        return
    assert got  # decoded silently: garbage in (trailing bytes ignored)


def test_binary_outputs_round_trip_to_tritonclient() -> None:
    """What the predictor returns for ``binary_data_output``: KServe encodes, tritonclient's parser reads the same values."""
    import tritonclient.http as th
    from kserve.protocol.infer_type import InferOutput, InferResponse, RequestedOutput

    outputs = [InferOutput("score", [2], "FP64", data=[0.125, 0.5]), InferOutput("decision", [2], "BOOL", data=[False, True]),
               InferOutput("intent", [2], "BYTES", data=["billing", TEXT])]
    body, json_len = InferResponse("id-1", "m", outputs, model_version="3", use_binary_outputs=True, parameters={"degraded": False}).to_rest()
    assert isinstance(body, bytes) and json_len is not None
    res = th.InferenceServerClient.parse_response_body(body, header_length=json_len)
    assert res.as_numpy("score").tolist() == [0.125, 0.5]
    assert res.as_numpy("decision").tolist() == [False, True]
    assert [x.decode() for x in res.as_numpy("intent")] == ["billing", TEXT]
    assert res.get_response()["model_version"] == "3"
    # one output asked for, as JSON: only that one comes back, in the JSON
    res2, none = InferResponse("id-2", "m", [InferOutput("score", [1], "FP64", data=[0.25]), InferOutput("decision", [1], "BOOL", data=[True])],
                               requested_outputs=[RequestedOutput("decision", {"binary_data": False})]).to_rest()
    assert none is None and [o["name"] for o in res2["outputs"]] == ["decision"] and res2["outputs"][0]["data"] == [True]


def test_datatype_fit() -> None:
    from kserve.protocol.infer_type import InferInput

    fields = {"amount": "FP64", "account_id": "INT64", "text": "BYTES", "flag": "BOOL"}
    ok = [InferInput("amount", [1], "FP32"), InferInput("account_id", [1], "UINT32"), InferInput("text", [1], "BYTES"),
          InferInput("flag", [1], "BOOL"), InferInput("unknown", [1], "BYTES")]
    assert datatype_problem(ok, fields) is None  # numeric widths are free; unknown names are the signature's business
    p = datatype_problem([InferInput("amount", [1], "BYTES")], fields)
    assert p is not None and "'amount'" in p and "FP64" in p and "/v2/models/" in p
    p = datatype_problem([InferInput("text", [1], "INT64")], fields)
    assert p is not None and "expects BYTES" in p
    assert datatype_problem([InferInput("flag", [1], "INT8")], fields) is not None


def test_parse_request_is_one_front_door_for_v1_and_v2() -> None:
    """`parse_request` (both predictors' entry): a v1 body and the same rows as a v2 InferRequest parse alike; wrong
    datatypes, unknown requested outputs, a body without instances and a non-object are RequestErrors naming the fix."""
    from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

    from kindml.pipelines.text.serving import TextSignature
    from kindml.serving.oip import parse_request
    from kindml.serving.signature import RequestError

    sig = TextSignature(kit=None)
    v1, is_v2 = parse_request({"instances": [{"text": TEXT, "customer_id": 7}]}, sig)
    assert not is_v2 and v1.n == 1
    text = InferInput("text", [1], "BYTES", [TEXT])
    cust = InferInput("customer_id", [1], "INT64", [7])
    v2, is_v2 = parse_request(InferRequest(model_name="m", infer_inputs=[text, cust]), sig, ("prediction_id",))
    assert is_v2 and v2.n == 1
    assert {k: list(map(str, v)) for k, v in v2.columns.items()} == {k: list(map(str, v)) for k, v in v1.columns.items()}
    ok = InferRequest(model_name="m", infer_inputs=[text], request_outputs=[RequestedOutput("prediction_id")])
    assert parse_request(ok, sig, ("prediction_id",))[0].n == 1
    with pytest.raises(RequestError, match="'nope' unknown; the model's outputs are intent, confidence, customer_known, prediction_id"):
        parse_request(InferRequest(model_name="m", infer_inputs=[text], request_outputs=[RequestedOutput("nope")]), sig, ("prediction_id",))
    with pytest.raises(RequestError, match="customer_id"):
        parse_request(InferRequest(model_name="m", infer_inputs=[text, InferInput("customer_id", [1], "BYTES", ["7"])]), sig)
    with pytest.raises(RequestError, match='needs "instances"'):
        parse_request({"inputs": []}, sig)
    with pytest.raises(RequestError, match="JSON object"):
        parse_request([1, 2], sig)
