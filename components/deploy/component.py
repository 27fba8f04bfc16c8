from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def deploy(config_json: str, env_json: str, clean: Input[Dataset], registered: Input[Artifact], deployed: Output[Artifact]):
    """Serve the champion with the KServe predictor and smoke-test it over v1 and v2 REST."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import deploy as stage

    try:
        cfg, env = context.load(config_json, env_json)
        out = stage.run(cfg, env, Path(clean.path), Path(registered.path), Path(deployed.path))
    except Exception as exc:
        context.record_failure("deploy", exc)
        raise
    deployed.metadata.update({"url": out["url"], "version": out["version"]})
