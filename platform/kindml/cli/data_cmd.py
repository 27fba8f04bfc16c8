"""`kindml data generate`: write the seeded synthetic dataset to a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import UsageError


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Generate or inspect datasets.", no_args_is_help=True)

    @data_app.command("generate")
    def generate(
        out: Path = typer.Option(..., "--out", help="Folder to write transactions.parquet and accounts.parquet into."),
        rows: int = typer.Option(None, help="Transactions (default from config: 60000)."),
        days: int = typer.Option(None, help="Days of history."),
        seed: int = typer.Option(None, help="Random seed."),
        drift: float = typer.Option(0.0, help="Drift severity 0..3 for the generated window (0: the training distribution)."),
        live: bool = typer.Option(False, help="Generate 'live' traffic after the history window instead of the history."),
        corrupt: float = typer.Option(0.0, help="Share of rows to damage (nulls, out-of-range, bad categories)."),
        fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Write a seeded fraud dataset (bring-your-own data uses the same schema)."""
        from kindml.config import CorruptionSpec, DriftSpec
        from kindml.data.generate import build_world, generate_history, generate_live
        from kindml.data.generate import corrupt as do_corrupt
        from kindml.data.load import content_hash, write_table

        if fmt not in ("parquet", "csv"):
            raise UsageError(f"--format {fmt!r} is not supported", "Use --format parquet or --format csv.")
        cfg = state().config({"data.rows": rows, "data.days": days, "data.seed": seed, "data.corruption.rate": corrupt or None})
        d = cfg.data
        world = build_world(d.seed, d.accounts, d.merchants, d.days, d.end_date)
        spec = DriftSpec.from_severity(drift)
        tx = generate_live(world, d.rows, spec) if live else generate_history(world, d.rows)
        damage = None
        if corrupt:
            tx, damage = do_corrupt(tx, CorruptionSpec(rate=corrupt), d.seed, cfg.validation.max_amount)
        paths = [write_table(tx, out / f"transactions.{fmt}"), write_table(world.accounts, out / f"accounts.{fmt}")]
        result = {"out": str(out), "files": [str(p) for p in paths], "rows": len(tx), "accounts": len(world.accounts),
                  "fraud_rate": round(float(tx["is_fraud"].mean()), 5), "content_hash": content_hash(tx, world.accounts),
                  "corruption": damage.to_dict() if damage else None}
        emit(result, output, f"wrote {len(tx)} transactions and {len(world.accounts)} accounts to {out}")

    @data_app.command("schema")
    def schema(output: Output = OUTPUT_OPTION) -> None:
        """The columns and types of bring-your-own data (transactions and accounts), and allowed values."""
        from kindml.data.schema import (
            ACCOUNT_COLUMNS,
            CATEGORIES,
            CHANNELS,
            COUNTRIES,
            SEGMENTS,
            TRANSACTION_COLUMNS,
        )

        d = {"transactions": TRANSACTION_COLUMNS, "accounts": ACCOUNT_COLUMNS,
             "allowed": {"merchant_category": list(CATEGORIES), "channel": list(CHANNELS), "country": list(COUNTRIES),
                         "home_country": list(COUNTRIES), "segment": list(SEGMENTS), "is_fraud": [0, 1]}}
        lines = ["transactions.(parquet|csv):"] + [f"  {k}: {v}" for k, v in TRANSACTION_COLUMNS.items()]
        lines += ["accounts.(parquet|csv):"] + [f"  {k}: {v}" for k, v in ACCOUNT_COLUMNS.items()]
        lines += ["allowed values:"] + [f"  {k}: {', '.join(map(str, v))}" for k, v in d["allowed"].items()]
        emit(d, output, "\n".join(lines))

    app.add_typer(data_app, name="data")
