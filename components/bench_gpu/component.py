from kfp import dsl
from kfp.dsl import HTML, Artifact, Output

from kindml.images import RUNTIME_GPU_IMAGE


@dsl.component(base_image=RUNTIME_GPU_IMAGE, install_kfp_package=False)
def bench_gpu(suite: str, models: str, device: str, results: Output[Artifact], table: Output[HTML]):
    """The ONNX Runtime benchmark on a GPU node (CUDA / TensorRT EPs); results JSON + markdown + plots as an artifact.

    ``device`` is ``cuda`` (fail clearly when the node has no CUDA EP) or ``auto`` (fall back to CPU with a message).
    """
    import html
    import subprocess
    import sys
    from pathlib import Path

    out = Path(results.path)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "kindml", "bench", "--suite", suite, "--device", device, "--out-dir", str(out), "-o", "json"]
    if models:
        for m in models.split(","):
            cmd += ["--models", m.strip()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"kindml bench failed with exit code {proc.returncode}: {proc.stderr.strip().splitlines()[-2:]}")
    md = sorted(out.glob("*.md"))
    text = md[-1].read_text(encoding="utf-8") if md else proc.stdout
    Path(table.path).write_text(f"<html><body><pre>{html.escape(text)}</pre></body></html>", encoding="utf-8")
