"""`kindml`: the entry point. Global options, sub-command registration, error printing."""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from pathlib import Path

import typer

from kindml import __version__
from kindml.cli.common import configure_logging, state
from kindml.errors import KindmlError

# Each module defines ``register(app: typer.Typer) -> None``. Imports inside
# the modules are lazy so that `kindml --help` stays fast.
_MODULES = (
    "kindml.cli.run_cmd",
    "kindml.cli.capstone_cmd",
    "kindml.cli.pipeline_cmd",
    "kindml.cli.config_cmd",
    "kindml.cli.data_cmd",
    "kindml.cli.runs_cmd",
    "kindml.cli.models_cmd",
    "kindml.cli.serve_cmd",
    "kindml.cli.monitor_cmd",
    "kindml.cli.feedback_cmd",
    "kindml.cli.cluster_cmd",
    "kindml.cli.bench_cmd",
    "kindml.cli.report_cmd",
)

HELP = """kindml: a Kubeflow-based ML platform kit for your laptop.

Runs ML pipelines (ingest → validate → features → train → evaluate → export →
register → deploy → monitor) — the built-in capstones (`kindml pipeline list`)
or your own (`kindml init NAME`, `kindml run FILE`) — on the embedded default
(kfp.local, Feast, Ray, MLflow, KServe, Prometheus) or on a kind cluster.
All state lives in the workspace (./.kindml or $KINDML_HOME).
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kindml {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="kindml",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def main(
        config: Path | None = typer.Option(None, "--config", "-c", help="Config file (default: ./kindml.yaml or $KINDML_CONFIG)."),  # noqa: UP007
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logs on stderr (-v info, -vv debug)."),
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ) -> None:
        st = state()
        st.config_path = config
        st.verbose = verbose
        configure_logging(verbose)

    for name in _MODULES:
        importlib.import_module(name).register(app)
    return app


def print_error(exc: KindmlError) -> None:
    sys.stderr.write(f"error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")
    sys.stderr.flush()


def run(argv: list[str] | None = None) -> None:
    app = build_app()
    try:
        app(args=argv, prog_name="kindml", standalone_mode=True)
    except KindmlError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted. Completed stages are cached; run the same command again to resume.\n")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug in kindml: short message, details only on request
        log = logging.getLogger("kindml")
        sys.stderr.write(f"error: internal error: {type(exc).__name__}: {exc}\n")
        sys.stderr.write("hint: this is a bug in kindml. Re-run with -vv to see the traceback and report it.\n")
        if state().verbose >= 2:
            traceback.print_exc()
        log.debug("internal error", exc_info=True)
        sys.exit(70)


if __name__ == "__main__":
    run()
