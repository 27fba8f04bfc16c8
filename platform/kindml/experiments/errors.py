"""The error an experiment raises for input a user can fix (a bad spec, a foreign or damaged state)."""

from __future__ import annotations

from kindml.errors import KindmlError


class ExperimentError(KindmlError):
    """An experiment spec, an outcome or a stored experiment state is invalid."""

    exit_code = 2
    default_hint = "See docs/experiments.md for the fields of an experiment spec and the outcome API."
