"""The predictor's ASGI guard on its own: what it passes on to KServe (and with which Content-Type), what it answers itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest

from kindml.serving.server import JsonGuard

pytestmark = pytest.mark.unit


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stands in for KServe's app: says what reached it."""
    body = b""
    more = True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    out = json.dumps({"reached": True, "content_type": headers.get("content-type"), "body": body.decode("latin-1")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})


def call(path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, dict[str, Any]]:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=JsonGuard(_echo))
        async with httpx.AsyncClient(transport=transport, base_url="http://predictor") as c:
            req = c.build_request(method, path, content=body if method == "POST" else None)
            for k in [k for k in req.headers if k.lower() == "content-type"]:
                del req.headers[k]  # httpx adds none for raw content; make sure
            req.headers.update(headers or {})
            return await c.send(req)

    r = asyncio.run(go())
    return r.status_code, r.json()


V1 = "/v1/models/m:predict"
V2 = "/v2/models/m/infer"
V2_VERSION = "/v2/models/m/versions/3/infer"
JSON_BODY = b'{"instances": [{"text": "hi"}]}'


def test_json_with_its_content_type_passes_unchanged() -> None:
    code, got = call(V1, JSON_BODY, {"Content-Type": "application/json; charset=utf-8"})
    assert code == 200 and got["reached"] and got["content_type"] == "application/json; charset=utf-8" and got["body"] == JSON_BODY.decode()


@pytest.mark.parametrize("ctype", [None, "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("path", [V1, V2])
def test_json_without_a_declared_type_is_passed_on_as_json(path: str, ctype: str | None) -> None:
    """tritonclient sends JSON with no Content-Type; curl -d and urllib label an untyped body as a form."""
    code, got = call(path, JSON_BODY, {"Content-Type": ctype} if ctype else {})
    assert code == 200 and got["content_type"] == "application/json" and got["body"] == JSON_BODY.decode()


def test_binary_request_goes_to_kserve_as_octet_stream() -> None:
    import tritonclient.http as th

    inp = th.InferInput("text", [1], "BYTES")
    inp.set_data_from_numpy(np.array(["où est mon colis"], dtype=object))
    body, json_len = th.InferenceServerClient.generate_request_body([inp])
    for path in (V2, V2_VERSION):
        code, got = call(path, body, {"Inference-Header-Content-Length": str(json_len)})
        assert code == 200 and got["content_type"] == "application/octet-stream", got
        assert got["body"].encode("latin-1") == body


@pytest.mark.parametrize("path,body,headers,status,needle", [
    (V1, b"text", {"Content-Type": "text/plain"}, 415, "Content-Type must be application/json"),
    (V2, b"text", {"Content-Type": "text/plain"}, 415, "Inference-Header-Content-Length"),  # names the binary option on v2
    (V1, b"{nope", {}, 400, "not valid JSON"),
    (V1, b"{nope", {"Content-Type": "application/x-www-form-urlencoded"}, 400, "curl -d"),
    (V1, b'{"a": NaN}', {"Content-Type": "application/json"}, 400, "NaN"),
    (V1, b"\xff\xfe{", {"Content-Type": "application/json"}, 400, "UTF-8"),
    (V1, JSON_BODY, {"Content-Encoding": "gzip", "Content-Type": "application/json"}, 415, "uncompressed"),
    (V1, JSON_BODY, {"Inference-Header-Content-Length": "5"}, 400, "only for POST /v2/models/<name>/infer"),
    (V2, b'{"inputs": []}', {"Inference-Header-Content-Length": "14"}, 400, '"inputs"'),
    (V2, b'{"inputs": []}', {"Inference-Header-Content-Length": "x"}, 400, "byte length"),
    (V2, b"{" + b" " * (8 * 1024 * 1024) + b"}", {"Content-Type": "application/json"}, 413, "8 MiB"),
])
def test_bad_bodies_are_answered_here_with_a_message(path: str, body: bytes, headers: dict, status: int, needle: str) -> None:
    code, got = call(path, body, headers)
    assert code == status and "reached" not in got and needle in got["error"], got


def test_reads_are_not_touched() -> None:
    code, got = call("/v2/models/m", b"", method="GET")
    assert code == 200 and got["reached"] and got["content_type"] is None
