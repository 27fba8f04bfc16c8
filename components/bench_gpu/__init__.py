from kindml.components.bench_gpu.component import bench_gpu

__all__ = ["bench_gpu"]
