from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def deploy(workload: str, registered: Input[Artifact], deployed: Output[Artifact], config_json: str = "{}"):
    """Serve the champion with the KServe predictor and smoke-test it over v1 and v2 REST."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import deploy as stage

    try:
        ctx = context.load(workload, config_json)
        out = stage.run(ctx.workload, ctx.env, Path(registered.path), Path(deployed.path))
    except Exception as exc:
        context.record_failure("deploy", exc)
        raise
    deployed.metadata.update({"url": out["url"], "version": out["version"]})
