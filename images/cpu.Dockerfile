# CPU images: the padding predictor and the operator (slim Python, no CUDA, no torch).
#   padding   EXTRA=padding   COMMAND=rgpu-padding
#   operator  EXTRA=operator  COMMAND=rgpu-operator
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY images/constraints.txt ./
# CA bundle pip trusts behind a TLS-intercepting proxy: a path mounted into the build (see
# images/build.sh, BUILD_CA_BUNDLE), never copied into an image; empty, pip uses its own.
ARG PIP_CERT=""
# setuptools at its pinned version: it builds the project (no build isolation, so the build
# backend is the pinned one, not whatever PyPI has that day) and some packages need it at run time.
# hadolint ignore=DL3013
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --constraint constraints.txt setuptools
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY predictors ./predictors
COPY operator ./operator
# every transitive version is pinned by constraints.txt (`make constraints` regenerates it);
# EXTRA is declared here so the layers above are shared by both images
ARG EXTRA=padding
# hadolint ignore=DL3013
RUN pip install --no-build-isolation --constraint constraints.txt ".[${EXTRA}]"

FROM ${PYTHON_IMAGE}
# The user (uid and gid 10001, as the pods' securityContext), and nothing writable by it outside
# /tmp: the base leaves /var/tmp and /run/lock world-writable.
RUN groupadd --gid 10001 reflector \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin reflector \
    && find / -xdev -path /tmp -prune -o -perm -0002 ! -type l -exec chmod o-w {} +
COPY --from=build /opt/venv /opt/venv
ARG COMMAND=rgpu-padding
# Read-only root filesystem: everything writable lives under /tmp (an emptyDir in the pod).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    REFLECTOR_GPU_UPLOAD_DIR=/tmp/reflector-gpu \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RGPU_ENTRYPOINT=${COMMAND}
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "-c", "exec \"$RGPU_ENTRYPOINT\" \"$@\"", "--"]
