# GPU predictor image: one Dockerfile for every GPU family, chosen by build arguments
# (`make images` passes them; see images/README.md). Models are never baked in: they come
# from KServe's storageUri (/mnt/models) or a model cache.
#
#   whisper    EXTRA=whisper     INSTALL_TORCH=false  (CTranslate2 4.x: CUDA 12 + cuDNN 9 from the base)
#   parakeet   EXTRA=parakeet    INSTALL_TORCH=true   (NeMo on torch 2.13, CUDA from the torch wheels)
#   diarizer   EXTRA=diarizer    INSTALL_TORCH=true
#   translator EXTRA=translator  INSTALL_TORCH=true
#   llm        EXTRA=llm         INSTALL_TORCH=true
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ARG EXTRA=whisper
ARG INSTALL_TORCH=false
ARG TORCH_VERSION=2.13.0
# Where pip also looks for torch: a URL or a directory of wheels mounted into the build (e.g.
# a CPU build for a test image, images/build.sh); empty: PyPI's, which brings CUDA.
ARG TORCH_FIND_LINKS=""
# CA bundle pip trusts behind a TLS-intercepting proxy: a path mounted into the build (see
# images/build.sh, BUILD_CA_BUNDLE), never copied into an image; unset, pip uses its own.
ARG PIP_CERT
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# torch first, pinned, so no dependency resolves a different build of it (hadolint cannot read
# the ${TORCH_FIND_LINKS:+...} expansion and takes the pinned torch for an unpinned one)
# hadolint ignore=DL3013
RUN if [ "$INSTALL_TORCH" = "true" ]; then \
        pip install ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"} "torch==${TORCH_VERSION}"; fi
COPY pyproject.toml README.md images/constraints.txt ./
COPY predictors ./predictors
COPY operator ./operator
# every transitive version is pinned by constraints.txt (`make constraints` regenerates it)
# hadolint ignore=DL3013
RUN pip install --constraint constraints.txt ".[${EXTRA}]"

FROM ${CUDA_IMAGE}
ARG PREDICTOR=whisper
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin reflector
COPY --from=build /opt/venv /opt/venv
# Read-only root filesystem: everything writable lives under /tmp (an emptyDir in the pod).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    REFLECTOR_GPU_UPLOAD_DIR=/tmp/reflector-gpu \
    REFLECTOR_GPU_CACHE=/tmp/reflector-gpu-cache \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RGPU_ENTRYPOINT=rgpu-${PREDICTOR}
USER 10001
EXPOSE 8080
# exec form through a tiny shell so the console script named by PREDICTOR is PID 1's child-free exec
ENTRYPOINT ["/bin/sh", "-c", "exec \"$RGPU_ENTRYPOINT\" \"$@\"", "--"]
CMD ["--http_port", "8080"]
