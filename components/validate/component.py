from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def validate(workload: str, raw: Input[Dataset], clean: Output[Dataset], validation: Output[Artifact], report: Output[HTML],
             stats: Output[Metrics], config_json: str = "{}", quarantine: bool = False):
    """Run the workload's Great Expectations suites; stop with a report, or quarantine bad rows (written aside and counted).

    ``quarantine=True`` turns quarantine on (else the config's validation.quarantine decides).
    """
    import shutil
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import validate as stage

    report_dir = Path(validation.path)
    try:
        ctx = context.load(workload, config_json, validation__quarantine=True if quarantine else None)
        out = stage.run(ctx.workload, Path(raw.path), Path(clean.path), report_dir)
    except Exception as exc:
        context.record_failure("validate", exc)
        raise
    finally:
        if (report_dir / "validation.html").exists():
            shutil.copy2(report_dir / "validation.html", report.path)
    clean.metadata.update({"rows": out["clean_rows"], "quarantined_rows": out["quarantined_rows"]})
    context.log_scalars(stats, {k: out[k] for k in ("rows", "clean_rows", "quarantined_rows", "failed_expectations")})
