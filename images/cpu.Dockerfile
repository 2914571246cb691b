# CPU images: the padding predictor and the operator (slim Python, no CUDA, no torch).
#   padding   EXTRA=padding   COMMAND=rgpu-padding
#   operator  EXTRA=operator  COMMAND=rgpu-operator
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRA=padding
# CA bundle pip trusts behind a TLS-intercepting proxy: a path mounted into the build (see
# images/build.sh, BUILD_CA_BUNDLE), never copied into an image; unset, pip uses its own.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md images/constraints.txt ./
COPY predictors ./predictors
COPY operator ./operator
# every transitive version is pinned by constraints.txt (`make constraints` regenerates it)
# hadolint ignore=DL3013
RUN pip install --constraint constraints.txt ".[${EXTRA}]"

FROM ${PYTHON_IMAGE}
ARG COMMAND=rgpu-padding
RUN useradd --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin reflector
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    REFLECTOR_GPU_UPLOAD_DIR=/tmp/reflector-gpu \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RGPU_ENTRYPOINT=${COMMAND}
USER 10001
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "-c", "exec \"$RGPU_ENTRYPOINT\" \"$@\"", "--"]
