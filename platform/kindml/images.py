"""Container images kindml builds and uses on a cluster: named in one place."""

from __future__ import annotations

from kindml import __version__

# The runtime image every KFP component, RayJob and predictor runs. Built by
# `kindml image build` from the repo's Dockerfile and loaded into kind with
# `kind load docker-image` (imagePullPolicy: IfNotPresent, no registry needed).
RUNTIME_IMAGE_REPO = "kindml-runtime"
RUNTIME_IMAGE = f"{RUNTIME_IMAGE_REPO}:{__version__}"

# The GPU variant (onnxruntime-gpu on an NVIDIA CUDA/TensorRT base) for the
# benchmark on GPU nodes: `docker build -f Dockerfile.gpu -t kindml-runtime-gpu:<v> .`
RUNTIME_GPU_IMAGE = f"{RUNTIME_IMAGE_REPO}-gpu:{__version__}"
