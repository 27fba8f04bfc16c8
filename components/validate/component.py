from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def validate(config_json: str, raw: Input[Dataset], quarantine: bool, clean: Output[Dataset], validation: Output[Artifact], report: Output[HTML], stats: Output[Metrics]):
    """Run the Great Expectations suite; stop with a report, or quarantine bad rows (written aside and counted)."""
    import shutil
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import validate as stage

    report_dir = Path(validation.path)
    try:
        cfg, _ = context.load(config_json, "", validation__quarantine=quarantine)
        out = stage.run(cfg, Path(raw.path), Path(clean.path), report_dir)
    except Exception as exc:
        context.record_failure("validate", exc)
        raise
    finally:
        if (report_dir / "validation.html").exists():
            shutil.copy2(report_dir / "validation.html", report.path)
    clean.metadata.update({"rows": out["clean_rows"], "quarantined_rows": out["quarantined_rows"]})
    stats.log_metric("rows", out["rows"])
    stats.log_metric("clean_rows", out["clean_rows"])
    stats.log_metric("quarantined_rows", out["quarantined_rows"])
    stats.log_metric("failed_expectations", out["failed_expectations"])
    context.save_metrics(stats)
