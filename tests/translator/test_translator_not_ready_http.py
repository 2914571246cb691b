"""Without a model the translator is not ready (503 with the reason); the other predictors serve."""

from __future__ import annotations

import httpx
import pytest

import rgpu_contract as contract
from support import KEYS, Service

pytestmark = pytest.mark.slow


def test_missing_model_is_503_with_reason_and_padding_keeps_serving(tmp_path):
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "translator,padding",
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "REFLECTOR_GPU_TRANSLATOR_ENGINE": "nllb",  # default hub model, unreachable offline
            "HF_HUB_OFFLINE": "1",
        },
        tmp_path,
        "notready",
    )
    try:
        svc.wait_ready("padding")
        ready = httpx.get(f"{svc.base}/v2/models/translator/ready")
        # The reason is in the readiness answer, after the marker the operator looks for.
        assert ready.status_code == 503 and f"{contract.MODEL_LOAD_FAILED}: " in ready.json()["detail"]
        assert "facebook/nllb-200-distilled-600M" in ready.json()["detail"]
        r = httpx.post(
            f"{svc.base}/translate",
            params={"text": "Hello.", "source_language": "en", "target_language": "fr"},
            headers={"Authorization": f"Bearer {KEYS[0]}"},
        )
        assert r.status_code == 503 and r.headers["retry-after"]
        detail = r.json()["detail"]
        assert "facebook/nllb-200-distilled-600M" in detail and "REFLECTOR_GPU_TRANSLATOR_MODEL" in detail
    finally:
        assert svc.stop() == 0


def test_operator_model_setting_picks_the_model_and_its_family(tmp_path, tiny_models):
    """The operator sets only REFLECTOR_GPU_MODEL (from the CR); a CR asking for an M2M100 model
    must get that model served as M2M100, not the NLLB default (before: the variable was ignored)."""
    svc = Service(
        {
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "REFLECTOR_GPU_MODEL": str(tiny_models / "m2m100"),
            "REFLECTOR_GPU_TRANSLATOR_NUM_BEAMS": "1",
            "REFLECTOR_GPU_LOG_LEVEL": "INFO",
            "HF_HUB_OFFLINE": "1",
        },
        tmp_path,
        "operator-model",
        kserve=("rgpu_translator", "--model_name", "translator", "--model_dir", str(tmp_path / "no-storage-uri")),
    )
    try:
        svc.wait_ready("translator", timeout=180)
        r = httpx.post(
            f"{svc.base}/translate",
            params={"text": "The budget.", "source_language": "en", "target_language": "fr"},
            headers={"Authorization": f"Bearer {KEYS[0]}"},
        )
        assert r.status_code == 200, r.text
        assert set(r.json()["text"]) == {"en", "fr"}
        log = svc.log_path.read_text()
        assert "m2m100 (from REFLECTOR_GPU_MODEL), family m2m100" in log, log[-2000:]
    finally:
        assert svc.stop() == 0
