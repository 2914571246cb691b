"""Without a model the translator is not ready (503 with the reason); the other predictors serve."""

from __future__ import annotations

import httpx
import pytest

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
        assert httpx.get(f"{svc.base}/v2/models/translator/ready").status_code == 503
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
