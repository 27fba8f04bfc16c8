"""Bounded, loopback-only traffic for the local predictor: replay a workload's generated requests over HTTP.

Each request carries one instance (v1 protocol). A fixed request rate is
kept by an open-loop schedule spread over a few client threads; without a
rate the threads send back to back. Latency is measured per request on the
client side (connection reuse, like a real client).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np

from kindml.errors import UsageError

MAX_DURATION_S = 600.0
MAX_RPS = 5_000.0


@dataclass
class LoadStats:
    requests: int = 0
    errors: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    responses: dict[int, bytes] = field(default_factory=dict)
    """Body of each successful answer by request index (only with ``collect=True``)."""

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([np.nan])
        return {
            "requests": self.requests,
            "errors": self.errors,
            "codes": dict(self.codes),
            "seconds": round(self.seconds, 2),
            "achieved_rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(float(np.nanpercentile(lat, 50)), 3),
            "p90_ms": round(float(np.nanpercentile(lat, 90)), 3),
            "p99_ms": round(float(np.nanpercentile(lat, 99)), 3),
            "max_ms": round(float(np.nanmax(lat)), 3),
        }


def check_loopback(url: str, allow_cluster: bool = False) -> tuple[str, int]:
    """Only loopback targets (and, for the kind target's monitor stage, in-cluster ``*.svc`` services)."""
    u = urlparse(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        raise UsageError(f"{url!r} is not an http://host:port URL", "Use the URL printed by `kindml serve start`.")
    if allow_cluster and (u.hostname.endswith(".svc") or u.hostname.endswith(".svc.cluster.local")):
        return u.hostname, u.port
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(u.hostname, u.port)}
    except socket.gaierror:
        raise UsageError(f"cannot resolve {u.hostname!r}", "Use 127.0.0.1.") from None
    if not all(ipaddress.ip_address(a).is_loopback for a in addrs):
        raise UsageError(f"loadgen only targets loopback addresses; {u.hostname} is not one", "kindml's load generator is for the local predictor: use 127.0.0.1.")
    return u.hostname, u.port


def payloads(instances: list[dict[str, Any]]) -> list[bytes]:
    """One v1 request body per instance (``Workload.traffic`` gives the instances)."""
    return [json.dumps({"instances": [inst]}).encode() for inst in instances]


def run_load(
    url: str,
    model: str,
    bodies: list[bytes],
    rps: float | None = None,
    duration: float | None = None,
    threads: int = 4,
    max_requests: int | None = None,
    allow_cluster: bool = False,
    collect: bool = False,
) -> LoadStats:
    """Send ``bodies`` (cycled) to ``url``: at ``rps`` for ``duration`` seconds, or each body once as fast as possible."""
    host, port = check_loopback(url, allow_cluster)
    if rps is not None and not 0 < rps <= MAX_RPS:
        raise UsageError(f"--rps {rps} is out of range", f"Use 0 < rps <= {MAX_RPS:g}.")
    if duration is not None and not 0 < duration <= MAX_DURATION_S:
        raise UsageError(f"--duration {duration} is out of range", f"Use 0 < duration <= {MAX_DURATION_S:g} seconds.")
    if not bodies:
        raise UsageError("no requests to send", "Generate at least one request.")
    total = max_requests or (int(rps * duration) if rps and duration else len(bodies))
    path = f"/v1/models/{model}:predict"
    stats = LoadStats()
    lock = threading.Lock()
    start = time.perf_counter() + 0.05
    next_index = iter(range(total))

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        local_lat: list[float] = []
        local_codes: dict[str, int] = {}
        local_bodies: dict[int, bytes] = {}
        errors = 0
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            if rps:
                due = start + i / rps
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            body = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = resp.read()
                code = str(resp.status)
                if collect and code == "200":
                    local_bodies[i] = answer
            except (OSError, http.client.HTTPException):
                code = "conn_error"
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            local_lat.append((time.perf_counter() - t0) * 1000)
            local_codes[code] = local_codes.get(code, 0) + 1
            if code != "200":
                errors += 1
        conn.close()
        with lock:
            stats.latencies_ms.extend(local_lat)
            stats.requests += len(local_lat)
            stats.errors += errors
            stats.responses.update(local_bodies)
            for k, v in local_codes.items():
                stats.codes[k] = stats.codes.get(k, 0) + v

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, threads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stats.seconds = time.perf_counter() - start
    return stats
