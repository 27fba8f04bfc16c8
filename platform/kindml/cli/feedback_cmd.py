"""`kindml feedback ingest FILE`: delayed labels (outcomes) joined to logged predictions; `kindml feedback actuals FILE`:
actuals of batch forecasts joined to them (realised forecast error)."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import DataError


def register(app: typer.Typer) -> None:
    f_app = typer.Typer(help="Delayed labels: join outcomes to logged predictions (realised model quality).", no_args_is_help=True)

    @f_app.command("ingest")
    def ingest_cmd(
        file: Path = typer.Argument(..., help="Outcomes: CSV / Parquet with prediction_id and outcome columns, JSON list, or JSON Lines."),
        url: str = typer.Option(None, "--url", help="Send to this predictor's POST /v1/feedback instead of the local prediction log "
                                "(e.g. a port-forwarded predictor on kind)."),
        log: Path = typer.Option(None, "--log", help="Prediction log to join into (default: the workspace's serving/predictions.db)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Join outcomes to the predictions they belong to (by the prediction_id every answer carries).

        A malformed file is refused whole, naming the bad records; ids nobody predicted and ids already
        labelled are reported. Exits non-zero when nothing was joined.
        """
        from kindml.monitoring import feedback

        records = feedback.read_file(file)
        if url:
            result = feedback.post(url, feedback.parse_records(records) and records)
        else:
            from kindml.monitoring.quality import PredictionLog

            path = log or feedback.log_path(state().workspace().serving)
            if not path.is_file():
                raise DataError(f"no prediction log at {path}", "Serve a model first (`kindml serve start`); it logs every prediction there.")
            result = feedback.ingest(PredictionLog(path), records).to_dict()
        n = len(records)
        text = (f"{result['joined']} of {n} outcomes joined; {len(result['unknown'])} unknown ids, "
                f"{len(result['duplicate'])} already labelled")
        if result["joined"] == 0:
            raise DataError(text, "Use the prediction_id values the predictor returned; each prediction takes one outcome.")
        emit(result, output, text)

    @f_app.command("actuals")
    def actuals_cmd(
        file: Path = typer.Argument(..., help="Actuals: CSV / Parquet with the series key(s), event_timestamp (the day) and the "
                                    "observed value (the forecast label, e.g. demand). `kindml data generate --actuals` writes some."),
        model: str = typer.Option(None, "--model", help="NAME (its champion), NAME@VERSION or NAME@ALIAS whose batch forecasts the "
                                  "actuals belong to (default: the one model with batch forecasts in the workspace)."),
        log: Path = typer.Option(None, "--log", help="Prediction log to write into (default: the workspace's serving/predictions.db, "
                                 "which the local predictor exports)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Join actuals to the version's latest batch forecasts and log the realised error.

        Each actual meets the forecast step that covered its day; the points go into the prediction log, so the
        predictor's /metrics exports the realised WAPE (kindml_quality) next to the holdout WAPE, and the worst series
        (kindml_series_error); KindmlErrorDegraded fires when it rises. Ingesting the same actuals again changes
        nothing. Bad values refuse the file whole; actuals of series without a forecast are counted, not fatal.
        """
        from kindml.monitoring import actuals, feedback
        from kindml.monitoring.quality import PredictionLog
        from kindml.runtime import RuntimeEnv

        cfg = state().config()
        ws = state().workspace(cfg)
        frame = actuals.read_actuals(file)
        name, version = actuals.resolve_version(ws.root, RuntimeEnv.local(cfg, ws).mlflow_tracking_uri, model, cfg.registry.champion_alias)
        forecasts, horizon, _ = actuals.load_forecasts(ws.root, name, version)
        result = actuals.ingest_actuals(PredictionLog(log or feedback.log_path(ws.serving)), name, version, forecasts, horizon, frame)
        unknown = (f"; {result['unknown_rows']} rows of {result['unknown_series']} series without a forecast "
                   f"(e.g. {', '.join(result['unknown_examples'])})" if result["unknown_rows"] else "")
        outside = f"; {result['outside_horizon']} rows outside the forecast horizon" if result["outside_horizon"] else ""
        head = (f"{name} v{version}: {result['matched']} of {result['rows']} actuals matched a forecast "
                f"({result['joined']} new, {result['duplicate']} already ingested){unknown}{outside}")
        if result["matched"] == 0:
            raise DataError(head, f"The actuals must be for the series and days {name} v{version} forecast "
                                  "(from its batch origin on, one value per series and day).")
        r = result["realised"]
        worst = ", ".join(f"{w['entity']} ({w['wape']:.3f})" for w in result["worst_series"][:3] if w.get("wape") is not None)
        text = (f"{head}\nrealised WAPE {r.get('wape', float('nan')):.4f}, MAE {r.get('mae', float('nan')):.3f}, "
                f"sMAPE {r.get('smape', float('nan')):.4f} over {result['series']} series; worst WAPE: {worst or '-'}")
        emit(result, output, text)

    app.add_typer(f_app, name="feedback")
