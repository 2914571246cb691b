"""Fixtures for the Parakeet predictor: a tiny random-weight FastConformer-TDT ``.nemo`` (built once,
cached under ``<repo>/.cache/``) served by the real local mode in both profiles.

No Parakeet weights can be had offline, so the model is built from a config with a SentencePiece
tokenizer trained on a few sentences; the service loads it with ``ASRModel.restore_from`` and runs
NeMo's ``transcribe(timestamps=True)``, exactly as in production. The text is meaningless.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys

import httpx
import pytest

from support import KEYS, ORIGIN_HOST, REPO, Service

if importlib.util.find_spec("nemo") is None:
    pytest.skip("nemo_toolkit is not installed (pip install -e '.[parakeet]')", allow_module_level=True)


def _cache_name() -> str:
    from rgpu_local.parakeet_synthetic import VERSION

    nemo = importlib.metadata.version("nemo_toolkit")
    return f"parakeet-tiny-tdt-v{VERSION}-nemo{nemo}.nemo"


@pytest.fixture(scope="session")
def tiny_nemo():
    """Path of the cached tiny FastConformer-TDT ``.nemo`` (built in a subprocess on first use)."""
    path = REPO / ".cache" / "parakeet" / _cache_name()
    if not path.is_file():
        code = (
            "import sys; from rgpu_local.parakeet_synthetic import build_tdt_nemo; "
            "from rgpu_parakeet.engine import quiet_nemo; quiet_nemo(); build_tdt_nemo(sys.argv[1], 'tiny')"
        )
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0 and path.is_file(), f"building the tiny model failed:\n{done.stderr[-3000:]}"
    return path


def _env(**extra: str) -> dict[str, str]:
    return {
        "REFLECTOR_GPU_LOCAL_PREDICTORS": "parakeet",
        "REFLECTOR_GPU_APIKEY": ",".join(KEYS),
        "REFLECTOR_GPU_URL_ALLOWLIST": f"{ORIGIN_HOST}/32",
        "REFLECTOR_GPU_LOG_LEVEL": "INFO",
        "REFLECTOR_GPU_PARAKEET_CPU_THREADS": "1",  # 2 shared cores: oversubscription is 10x slower
        "HF_HUB_OFFLINE": "1",
        "REFLECTOR_GPU_PARAKEET_MODEL": "",
        **extra,
    }


@pytest.fixture(scope="session")
def parakeet_services(tmp_path_factory, tiny_nemo):
    """Three local-mode processes started at once (NeMo's import is slow; they load in parallel):
    ``live`` (the .nemo file, live profile), ``file`` (a KServe-style model directory, file profile,
    batches of 4 chunks of at most 15 s) and ``offline`` (the default hub name, no network)."""
    model_dir = tmp_path_factory.mktemp("mnt-models")
    shutil.copy(tiny_nemo, model_dir / "parakeet-tdt-0.6b-v2.nemo")
    specs = {
        "live": _env(REFLECTOR_GPU_PROFILE="live", REFLECTOR_GPU_PARAKEET_MODEL=str(tiny_nemo)),
        "file": _env(
            REFLECTOR_GPU_PROFILE="file",
            REFLECTOR_GPU_PARAKEET_MODEL=str(model_dir),
            REFLECTOR_GPU_PARAKEET_BATCH_SIZE="4",
            REFLECTOR_GPU_PARAKEET_MAX_CHUNK_S="15",
        ),
        "offline": _env(),
    }
    services = {
        name: Service(env, tmp_path_factory.mktemp(f"parakeet-{name}"), f"parakeet-{name}")
        for name, env in specs.items()
    }
    try:
        for svc in services.values():
            svc.wait_listening(timeout=240)
        yield services
    finally:
        codes = {name: svc.stop() for name, svc in services.items()}
    assert codes == {name: 0 for name in services}, f"services did not exit cleanly on SIGTERM: {codes}"
    for name, svc in services.items():
        leftovers = sorted(p.name for p in svc.upload_dir.glob("*")) if svc.upload_dir.exists() else []
        assert leftovers == [], f"{name}: temporary files left in the upload directory: {leftovers}"
        log = svc.log_path.read_text()
        leaked = [k for k in KEYS if k in log]
        assert not leaked, f"{name}: API keys appear in the service log"


@pytest.fixture(scope="session")
def live(parakeet_services):
    svc = parakeet_services["live"]
    svc.wait_ready("parakeet")
    return svc


@pytest.fixture(scope="session")
def file_service(parakeet_services):
    svc = parakeet_services["file"]
    svc.wait_ready("parakeet")
    return svc


@pytest.fixture
def api(live):
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=300) as client:
        yield client
