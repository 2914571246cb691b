"""Fixtures for the translator: tiny real models built once into <repo>/.cache, and the service."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fail fast instead of timing out

import httpx
import pytest

from support import KEYS, REPO, Service

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_models import model_root  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models() -> Path:
    return model_root(REPO / ".cache")


def start_translator(tmp: Path, name: str, env: dict[str, str]) -> Service:
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "translator",
            "REFLECTOR_GPU_APIKEY": ",".join(KEYS),
            "REFLECTOR_GPU_TRANSLATOR_NUM_BEAMS": "1",
            "REFLECTOR_GPU_TRANSLATOR_CPU_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **env,
        },
        tmp,
        name,
    )
    svc.wait_ready("translator")
    return svc


def stop_clean(svc: Service) -> None:
    code = svc.stop()
    svc.assert_clean_exit(code)


@pytest.fixture(scope="module")
def marian(tmp_path_factory, tiny_models):
    """Marian engine over a directory of opus-mt-<src>-<tgt> models, one kept loaded at a time."""
    svc = start_translator(
        tmp_path_factory.mktemp("marian"),
        "marian",
        {
            "REFLECTOR_GPU_TRANSLATOR_ENGINE": "marian",
            "REFLECTOR_GPU_TRANSLATOR_MODEL": str(tiny_models),
            "REFLECTOR_GPU_TRANSLATOR_MAX_LOADED_MODELS": "1",
            "REFLECTOR_GPU_TRANSLATOR_BATCH_SIZE": "32",
            "REFLECTOR_GPU_TRANSLATOR_MAX_BATCH_WAIT_MS": "50",
        },
    )
    yield svc
    stop_clean(svc)


@pytest.fixture(scope="module")
def nllb(tmp_path_factory, tiny_models):
    svc = start_translator(
        tmp_path_factory.mktemp("nllb"),
        "nllb",
        {"REFLECTOR_GPU_TRANSLATOR_ENGINE": "nllb", "REFLECTOR_GPU_TRANSLATOR_MODEL": str(tiny_models / "nllb")},
    )
    yield svc
    stop_clean(svc)


def client(svc: Service, key: str = KEYS[0]) -> httpx.Client:
    return httpx.Client(base_url=svc.base, headers={"Authorization": f"Bearer {key}"}, timeout=300)


@pytest.fixture(scope="session")
def keys() -> tuple[str, ...]:
    return KEYS


@pytest.fixture(scope="session")
def connect():
    """``connect(svc, key=KEYS[0])`` -> an httpx client with the bearer key."""
    return client


@pytest.fixture(scope="module")
def api(marian, connect):
    """A client of the MarianMT service, for the modules that test through it."""
    with connect(marian) as c:
        yield c
