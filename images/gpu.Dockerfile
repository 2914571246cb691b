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
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# No compiler: every dependency installs from a wheel (images/resolve-py312.sh proves it for the
# base's Python 3.12); the one sdist, antlr4-python3-runtime, is pure Python.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY images/constraints.txt ./
# CA bundle pip trusts behind a TLS-intercepting proxy: a path mounted into the build (see
# images/build.sh, BUILD_CA_BUNDLE), never copied into an image; empty, pip uses its own.
ARG PIP_CERT=""
# setuptools at its pinned version: it builds the project (no build isolation, so the build
# backend is the pinned one, not whatever PyPI has that day) and some packages need it at run time.
# hadolint ignore=DL3013
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --constraint constraints.txt setuptools
ENV PATH=/opt/venv/bin:$PATH
# torch first, pinned (its own dependencies by constraints.txt), so no dependency resolves a
# different build of it; the torch images share this layer. hadolint cannot read the
# ${TORCH_FIND_LINKS:+...} expansion and takes the pinned torch for an unpinned one.
ARG INSTALL_TORCH=false
ARG TORCH_VERSION=2.13.0
# Where pip also looks for torch: a URL or a directory of wheels mounted into the build (e.g.
# a CPU build for a test image, images/build.sh); empty: PyPI's, which brings CUDA.
ARG TORCH_FIND_LINKS=""
# hadolint ignore=DL3013
RUN if [ "$INSTALL_TORCH" = "true" ]; then \
        pip install --constraint constraints.txt ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"} \
            "torch==${TORCH_VERSION}"; \
    fi
COPY pyproject.toml README.md ./
COPY predictors ./predictors
COPY operator ./operator
# every transitive version is pinned by constraints.txt (`make constraints` regenerates it);
# EXTRA is declared here so the layers above are shared by the images
ARG EXTRA=whisper
# hadolint ignore=DL3013
RUN pip install --no-build-isolation --constraint constraints.txt ".[${EXTRA}]"

FROM ${CUDA_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# Python, the user (uid and gid 10001, as the pods' securityContext), and nothing writable by it
# outside /tmp: the base leaves /var/tmp and /run/lock world-writable.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 reflector \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin reflector \
    && find / -xdev -path /tmp -prune -o -perm -0002 ! -type l -exec chmod o-w {} +
COPY --from=build /opt/venv /opt/venv
ARG PREDICTOR=whisper
# Read-only root filesystem: everything writable lives under /tmp (an emptyDir in the pod).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    REFLECTOR_GPU_UPLOAD_DIR=/tmp/reflector-gpu \
    REFLECTOR_GPU_CACHE=/tmp/reflector-gpu-cache \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RGPU_ENTRYPOINT=rgpu-${PREDICTOR}
USER 10001:10001
EXPOSE 8080
# exec form through a tiny shell so the console script named by PREDICTOR is PID 1's child-free exec
ENTRYPOINT ["/bin/sh", "-c", "exec \"$RGPU_ENTRYPOINT\" \"$@\"", "--"]
CMD ["--http_port", "8080"]
