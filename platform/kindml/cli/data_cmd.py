"""`kindml data generate|schema`: a workload's seeded dataset, and the tables bring-your-own data must have."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import UsageError

PIPELINE_OPTION = typer.Option(None, "--pipeline", help="Whose data: a built-in capstone (default: the default capstone) or a workload .py file.")


def _workload(pipeline: str | None, overrides: dict | None = None):  # type: ignore[no-untyped-def]
    """The workload (with its effective config) of a capstone name, or of a workload module / .py file."""
    from kindml.pipelines import CAPSTONES, DEFAULT_CAPSTONE
    from kindml.workload.loader import instantiate, workload_config

    ref = CAPSTONES[pipeline or DEFAULT_CAPSTONE].workload if (pipeline or DEFAULT_CAPSTONE) in CAPSTONES else str(pipeline)
    cfg = workload_config(ref, state().config_path, overrides)
    return instantiate(ref, cfg)


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Generate or inspect a workload's datasets.", no_args_is_help=True)

    @data_app.command("generate")
    def generate(
        out: Path = typer.Option(..., "--out", help="Folder to write the workload's tables into (one file per table)."),
        pipeline: str = PIPELINE_OPTION,
        rows: int = typer.Option(None, help="Events (default from config: 60000)."),
        days: int = typer.Option(None, help="Days of history."),
        seed: int = typer.Option(None, help="Random seed."),
        drift: float = typer.Option(0.0, help="Drift severity 0..3 for --live events (0: the training distribution)."),
        live: bool = typer.Option(False, help="Generate 'live' events after the history window instead of the history."),
        actuals: bool = typer.Option(False, "--actuals", help="Write the actuals of the forecast horizon after the window "
                                     "(forecasting workloads) to OUT/actuals.<format>, for `kindml feedback actuals`."),
        shift: float = typer.Option(0.0, "--shift", help="With --actuals: 0..1, a change of the actuals the inputs do not show "
                                    "(the realised error rises)."),
        corrupt: float = typer.Option(0.0, help="Share of event rows to damage (the workload's defect kinds)."),
        fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Write a workload's seeded dataset (bring-your-own data uses the same schema: `kindml data schema`)."""
        from kindml.data.load import content_hash, write_table

        if fmt not in ("parquet", "csv"):
            raise UsageError(f"--format {fmt!r} is not supported", "Use --format parquet or --format csv.")
        if not 0.0 <= drift <= 3.0:
            raise UsageError(f"--drift {drift} is out of range", "Use a value between 0 (no drift) and 3 (extreme).")
        wl = _workload(pipeline, {"data.rows": rows, "data.days": days, "data.seed": seed})
        if actuals:
            if not 0.0 <= shift <= 1.0:
                raise UsageError(f"--shift {shift} is out of range", "Use a value between 0 (as forecastable) and 1 (a strong level shock).")
            frame = wl.actuals(shift)
            path = write_table(frame, out / f"actuals.{fmt}")
            emit({"out": str(out), "workload": wl.name, "files": [str(path)], "rows": len(frame), "shift": shift}, output,
                 f"wrote {len(frame)} actuals to {path}")
            return
        tables = dict(wl.generate().tables)
        if live:
            tables[wl.event_table] = wl.live(wl.cfg.data.rows, drift, stream=1)
        damage = None
        if corrupt:
            tables, damage = wl.corrupt(tables, corrupt, wl.cfg.data.seed)
        paths = [write_table(df, out / f"{name}.{fmt}") for name, df in tables.items()]
        result = {"out": str(out), "workload": wl.name, "files": [str(p) for p in paths], "rows": len(tables[wl.event_table]),
                  **wl.data_summary(tables), "content_hash": content_hash(*(tables[n] for n in sorted(tables))), "corruption": damage}
        emit(result, output, f"wrote {', '.join(f'{len(df)} {name}' for name, df in tables.items())} to {out}")

    @data_app.command("schema")
    def schema(pipeline: str = PIPELINE_OPTION, output: Output = OUTPUT_OPTION) -> None:
        """The tables, columns and types of a workload's bring-your-own data, and allowed values."""
        wl = _workload(pipeline)
        tables = wl.schemas()
        allowed = wl.allowed_values()
        d = {**tables, "allowed": allowed}
        lines = []
        for name, cols in tables.items():
            lines += [f"{name}.(parquet|csv):"] + [f"  {k}: {v}" for k, v in cols.items()]
        if allowed:
            lines += ["allowed values:"] + [f"  {k}: {', '.join(map(str, v))}" for k, v in allowed.items()]
        emit(d, output, "\n".join(lines))

    app.add_typer(data_app, name="data")
