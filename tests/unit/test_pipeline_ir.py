"""Every capstone's compiled KFP IR carries what the cluster needs: every task gets the
in-cluster addresses (ConfigMap kindml-runtime-env, via kfp-kubernetes) and
resource requests and limits; the embedded default ignores both."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.unit


from kindml.pipelines import CAPSTONES  # noqa: E402


@pytest.fixture(scope="module", params=sorted(CAPSTONES))
def ir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, dict]:
    import importlib

    from kindml.pipeline.compile import compile_pipelines
    from kindml.pipelines import PIPELINES

    out = tmp_path_factory.mktemp("ir")
    compile_pipelines(out, PIPELINES, [request.param])
    spec, platform = list(yaml.safe_load_all((out / f"{request.param}.yaml").read_text()))
    module = importlib.import_module(CAPSTONES[request.param].pipeline.partition(":")[0])
    return spec, platform, module.TASK_RESOURCES


def test_every_task_gets_the_runtime_env_configmap(ir) -> None:  # type: ignore[no-untyped-def]
    from kindml.cluster import endpoints
    from kindml.pipeline.tasks import STAGES

    spec, platform, _ = ir
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) <= {f"exec-{s}" for s in STAGES}  # every task is a platform stage (batch only where a workload batches)
    assert {f"exec-{s}" for s in STAGES if s != "batch"} <= set(executors)
    for name, ex in executors.items():
        (cm,) = ex["configMapAsEnv"]
        assert cm["configMapName"] == endpoints.RUNTIME_ENV_CONFIGMAP, name
        keys = {m["configMapKey"]: m["envVar"] for m in cm["keyToEnv"]}
        assert keys == {k: k for k in endpoints.RUNNER_ENV}, name  # includes KINDML_FEAST_REGISTRY
        assert not cm.get("optional"), name  # a missing ConfigMap fails the pod instead of running with defaults


def test_every_task_has_requests_and_limits_and_train_stays_small(ir) -> None:  # type: ignore[no-untyped-def]
    spec, _, RESOURCES = ir  # noqa: N806 - the capstone's table of requests and limits
    executors = spec["deploymentSpec"]["executors"]
    for name, ex in executors.items():
        r = ex["container"]["resources"]
        cpu, mem, cpu_max, mem_max = RESOURCES[name.removeprefix("exec-")]
        assert (r["resourceCpuRequest"], r["resourceMemoryRequest"], r["resourceCpuLimit"], r["resourceMemoryLimit"]) == (cpu, mem, cpu_max, mem_max)
        assert r["cpuRequest"] <= r["cpuLimit"] and r["memoryRequest"] <= r["memoryLimit"], name
    # train only submits the RayJob on the cluster: its pod must not hold the CPUs the Ray workers need
    assert executors["exec-train"]["container"]["resources"]["cpuRequest"] <= 0.25
    total_cpu = sum(ex["container"]["resources"]["cpuRequest"] for ex in executors.values())
    assert total_cpu <= 2.5  # tasks run one after another; even all at once they fit next to the platform


def test_task_images_are_the_runtime_image(ir) -> None:  # type: ignore[no-untyped-def]
    from kindml.images import RUNTIME_IMAGE

    spec, _, _ = ir
    assert {ex["container"]["image"] for ex in spec["deploymentSpec"]["executors"].values()} == {RUNTIME_IMAGE}


def test_every_task_gets_its_workload_and_the_config(ir) -> None:  # type: ignore[no-untyped-def]
    """The reusable components are parameterised by the workload: every task of a capstone names the same one."""
    spec, _, _ = ir
    refs = set()
    for task in spec["root"]["dag"]["tasks"].values():
        params = task.get("inputs", {}).get("parameters", {})
        if "workload" in params:
            refs.add(params["workload"]["runtimeValue"]["constant"])
            assert params["config_json"]["componentInputParameter"] == "config_json"
    assert len(refs) == 1 and next(iter(refs)).startswith("kindml.pipelines.")


def test_every_component_folder_documents_its_interface() -> None:
    """components/<name>/metadata.yaml and README.md exist and list exactly the component's inputs and outputs."""
    from pathlib import Path

    import kindml.components as C

    root = Path(__file__).resolve().parents[2] / "components"
    for name in C.__all__:
        spec = getattr(C, name).component_spec
        meta = yaml.safe_load((root / name / "metadata.yaml").read_text())
        assert meta["name"] == name and (root / name / "README.md").is_file()
        assert [i["name"] for i in meta["inputs"]] == list(spec.inputs or {}), name
        assert [o["name"] for o in meta["outputs"]] == list(spec.outputs or {}), name
        assert "workload" in (spec.inputs or {}) and "config_json" in (spec.inputs or {}), name
