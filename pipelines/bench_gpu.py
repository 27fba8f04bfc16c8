"""The benchmark suite as a one-step KFP pipeline pinned to a GPU node of the kind cluster.

Requests ``nvidia.com/gpu: 1``, selects the GPU pool (``kindml.io/pool: gpu``,
see ``kind-config.gpu.yaml`` / ``manifests/overlays/kind-gpu``) and tolerates
the GPU taint. It cannot run on this machine (no GPU, no cluster): the
compiled IR is checked by the tests; provider selection is unit-tested.
"""

# no `from __future__ import annotations`: KFP reads the real annotations.
from kfp import dsl, kubernetes

from kindml.components.bench_gpu import bench_gpu as bench_gpu_component

GPU_POOL_LABEL = ("kindml.io/pool", "gpu")


@dsl.pipeline(name="kindml-bench-gpu", description="ONNX Runtime FP32/FP16/INT8 with CUDA and TensorRT EPs on a GPU node.")
def bench_gpu(suite: str = "quick", models: str = "", device: str = "cuda") -> None:
    task = bench_gpu_component(suite=suite, models=models, device=device).set_display_name("bench-gpu")
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    task.set_cpu_request("2").set_memory_request("6G").set_memory_limit("12G")
    task.set_caching_options(False)
    kubernetes.add_node_selector(task, label_key=GPU_POOL_LABEL[0], label_value=GPU_POOL_LABEL[1])
    kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
