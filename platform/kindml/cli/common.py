"""Shared CLI plumbing: the global options, output formats, progress and error printing.

Every command module defines a ``typer.Typer`` (or plain functions) and uses
:func:`state` for the global options, :func:`emit` to print results as text or
JSON, and raises :class:`~kindml.errors.KindmlError` for user errors; ``run()``
in :mod:`kindml.cli.main` prints them as ``error:``/``hint:`` with a non-zero
exit code, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from kindml.errors import UsageError


class Output(StrEnum):
    text = "text"
    json = "json"


OUTPUT_OPTION = typer.Option(Output.text, "--output", "-o", help="Output format: human-readable text or JSON on stdout.", case_sensitive=False)


@dataclass
class CliState:
    config_path: Path | None = None
    verbose: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def config(self, overrides: dict[str, Any] | None = None) -> Any:
        from kindml.config import load_config

        return load_config(self.config_path, overrides=overrides)

    def workspace(self, cfg: Any = None) -> Any:
        from kindml.workspace import Workspace

        cfg = cfg if cfg is not None else self.config()
        return Workspace(Path(cfg.home))


_STATE = CliState()


def state() -> CliState:
    return _STATE


def configure_logging(verbose: int) -> None:
    level = os.environ.get("KINDML_LOG_LEVEL") or ("DEBUG" if verbose >= 2 else "INFO" if verbose == 1 else "WARNING")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("kindml").setLevel(level)


def progress_enabled(output: Output = Output.text) -> bool:
    """Progress bars go to stderr, only for text output on a terminal (or when forced)."""
    if os.environ.get("KINDML_NO_PROGRESS"):
        return False
    return output == Output.text


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def emit(result: Any, output: Output, text: str | None = None) -> None:
    """Print a command's result: JSON on stdout for --output json, else ``text``."""
    if output == Output.json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    elif text is not None:
        sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def parse_set_options(values: list[str] | None) -> dict[str, Any]:
    """``--set section.field=value`` flags → dotted overrides (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for item in values or []:
        if "=" not in item:
            raise UsageError(f"--set {item!r} is not KEY=VALUE", "Write it like --set train.workers=2 (see `kindml config show`).")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise UsageError(f"--set {item!r}: empty key", "Write it like --set train.workers=2.")
        from kindml.config import EXPLICIT_NULL

        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        out[key] = EXPLICIT_NULL if value is None else value
    return out
