"""The KServe container entry point serves the same contract as the local mode."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from support import KEYS, REPO, free_port, shared_audio

pytestmark = pytest.mark.slow


def test_kserve_whisper_entrypoint_serves_model_dir_with_kserve_arguments(tmp_path):
    from rgpu_local.models import whisper_base_dir

    model_dir = whisper_base_dir(REPO / ".cache")
    port, metrics_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "REFLECTOR_GPU_APIKEY": KEYS[0],
        "REFLECTOR_GPU_UPLOAD_DIR": str(tmp_path / "up"),
        # As the operator configures a pod: metrics on their own port, no API docs.
        "REFLECTOR_GPU_METRICS_PORT": str(metrics_port),
        "REFLECTOR_GPU_API_DOCS": "false",
    }
    cmd = [
        sys.executable,
        "-m",
        "rgpu_whisper",
        "--model_name",
        "whisper-live",
        "--model_dir",
        str(model_dir),
        "--http_port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            try:
                if httpx.get(base + "/v2/models/whisper-live/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        r = httpx.post(
            base + "/v1/audio/transcriptions",
            headers={"Authorization": f"Bearer {KEYS[0]}"},
            files={"file": ("s.wav", shared_audio("test_short.wav").read_bytes())},
            timeout=120,
        )
        assert r.status_code == 200 and r.json()["words"], r.text
        auth = {"Authorization": f"Bearer {KEYS[0]}"}
        listing = httpx.get(base + "/v1/models", headers=auth)
        assert listing.json() == {"models": ["whisper-live"]}
        assert httpx.get(base + "/v1/models").status_code == 401
        # Cluster configuration: nothing but probes is open on the serving port; /metrics is on
        # its own port (the NetworkPolicy admits monitoring there alone); the docs are off.
        assert httpx.get(base + "/metrics").status_code == 401
        assert httpx.get(base + "/metrics", headers=auth).status_code == 404
        for path in ("/docs", "/openapi.json"):
            assert httpx.get(base + path).status_code == 401
            assert httpx.get(base + path, headers=auth).status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200 and "reflector_gpu_requests_total" in scraped.text
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
