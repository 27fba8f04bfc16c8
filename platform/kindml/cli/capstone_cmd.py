"""`kindml capstone`: the alias of `kindml run <the default capstone>` with the capstone's own flags."""

from __future__ import annotations

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, parse_set_options


def register(app: typer.Typer) -> None:
    @app.command("capstone")
    def capstone(
        rows: int = typer.Option(None, help="Events to generate (default 60000)."),
        days: int = typer.Option(None, help="Days of history (default 60)."),
        seed: int = typer.Option(None, help="Seed for data, tuning and training (default 42)."),
        drift: float = typer.Option(
            None, help="Drift severity 0..3 of the live traffic used by monitoring."
        ),
        concept: float = typer.Option(
            None,
            help="Concept shift 0..1 of the late live traffic (labels change, inputs do not): its delayed labels show the quality drop.",
        ),
        corrupt: float = typer.Option(
            None, help="Share of rows to damage on purpose (validation must catch it), e.g. 0.05."
        ),
        quarantine: bool = typer.Option(
            None,
            "--quarantine/--no-quarantine",
            help="Quarantine bad rows (written aside, counted) instead of failing.",
        ),
        workers: int = typer.Option(None, help="Ray Train workers (default 2)."),
        epochs: int = typer.Option(None, help="Epochs of the final fit."),
        tune_trials: int = typer.Option(None, help="Ray Tune trials."),
        min_roc_auc: float = typer.Option(None, help="Evaluation gate floor (evaluate.min_score)."),
        quantize: bool = typer.Option(None, "--quantize/--no-quantize", help="Export: also build INT8 variants and serve the fastest within quantize.accuracy_budget."),
        data: str = typer.Option(None, "--data", help="Bring your own data: a folder with the workload's tables (parquet or CSV)."),
        set_: list[str] = typer.Option(None, "--set", help="Any config field, e.g. --set train.batch_size=1024 (repeatable)."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Also deploy the champion and run the monitoring replay (deploy, monitor stages)."),
        target: str = typer.Option("local", "--target", help="local: kfp.local on this machine; kind: submit to KFP on the kind cluster (`kindml up`)."),
        kfp_host: str = typer.Option(None, "--kfp-host", help="KFP API for --target kind (default http://127.0.0.1:30088)."),
        resume: str = typer.Option(None, "--resume", help="Re-run RUN_ID with its saved parameters, reusing completed stages."),
        run_id: str = typer.Option(None, "--run-id", help="Name the run (default: <capstone>-<time>-<random>)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Run the default capstone (the same as `kindml run` with its name, see `kindml pipeline list`):
        ingest → validate → features → train → evaluate → export → register → deploy → monitor.

        --target local (default): kfp.local on this machine. --target kind: the
        same pipeline compiled and run on KFP in the kind cluster (`kindml up`),
        followed task by task. Both write .kindml/runs/<run_id>/summary.json
        with the same fields and print where it is. Exit
        code 0 on success; 4 when validation stops the run (the report path is
        printed); other non-zero codes name the failing stage.
        """
        from kindml.cli.run_cmd import execute, resolve
        from kindml.pipelines import DEFAULT_CAPSTONE

        overrides = parse_set_options(set_)
        overrides.update(
            {
                "data.rows": rows,
                "data.days": days,
                "data.seed": seed,
                "data.drift": drift,
                "data.concept_shift": concept,
                "data.corruption.rate": corrupt,
                "validation.quarantine": quarantine,
                "train.workers": workers,
                "train.epochs": epochs,
                "train.tune_trials": tune_trials,
                "evaluate.min_score": min_roc_auc,
                "quantize.enabled": quantize,
            }
        )
        if seed is not None:
            overrides["train.seed"] = seed
        if data is not None:
            overrides.update({"data.source": "file", "data.path": data})
        execute(resolve(DEFAULT_CAPSTONE), overrides, {}, target=target, serve=serve, resume=resume, run_id=run_id, kfp_host=kfp_host,
                output=output)
