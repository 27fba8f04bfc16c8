"""`kindml feedback ingest FILE`: delayed labels (outcomes) joined to logged predictions."""

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

    app.add_typer(f_app, name="feedback")
