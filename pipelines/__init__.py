"""KFP v2 pipelines of kindml (``kindml.pipelines``). ``PIPELINES`` maps name → pipeline function factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _capstone() -> Any:
    from kindml.pipelines.capstone import capstone

    return capstone


PIPELINES: dict[str, Callable[[], Any]] = {"capstone": _capstone}
