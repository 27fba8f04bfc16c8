"""One error hierarchy for kindml.

Every error a user can cause carries a message (what went wrong) and a hint
(how to fix it). The CLI turns a :class:`KindmlError` into ``error: ...`` plus
``hint: ...`` on stderr and a non-zero exit code, never a traceback. The HTTP
server maps them to 4xx answers the same way.
"""

from __future__ import annotations


class KindmlError(Exception):
    """Base class of every error kindml raises on purpose."""

    exit_code: int = 1
    default_hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class ConfigError(KindmlError):
    """A configuration file, environment variable or flag is invalid."""

    exit_code = 2
    default_hint = "Check the file and field named above; `kindml config show` prints the effective config."


class UsageError(KindmlError):
    """A command was called with arguments that cannot work together."""

    exit_code = 2


class DataError(KindmlError):
    """Input data cannot be read or does not have the expected schema."""

    exit_code = 3


class ValidationFailed(KindmlError):
    """Data validation (Great Expectations) failed."""

    exit_code = 4
    default_hint = (
        "Read the validation report named above. To continue with the good rows, run with "
        "--quarantine: bad rows are written aside and counted, never silently dropped."
    )


class GateFailed(KindmlError):
    """The evaluation gate refused a candidate model."""

    exit_code = 5


class ExportError(KindmlError):
    """ONNX export or its parity check failed."""

    exit_code = 6


class RegistryError(KindmlError):
    """The model registry refused an operation or has no such model."""

    exit_code = 7


class PipelineFailed(KindmlError):
    """A pipeline stage failed."""

    exit_code = 8


class ServingError(KindmlError):
    """The local predictor could not be started, reached or stopped."""

    exit_code = 9


class PrerequisiteMissing(KindmlError):
    """A tool or server kindml needs is not installed or not running."""

    exit_code = 10


class ClusterError(KindmlError):
    """A cluster operation failed."""

    exit_code = 11


class BenchmarkError(KindmlError):
    """The benchmark suite was asked for something it cannot do (unknown model, no CUDA, ...)."""

    exit_code = 12


class MonitoringError(KindmlError):
    """The local Prometheus could not be started, reached or stopped, or a drift profile is unusable."""

    exit_code = 13
