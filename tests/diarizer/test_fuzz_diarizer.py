"""Schemathesis against the diarizer's own OpenAPI schema, auth on (bounded for CI).

Shared fuzzing code: ``tests/fuzzing.py``. A generated ``audio_file_url`` is an arbitrary string
that the URL guard refuses, so on half of the ``/diarize`` cases (the same coin that puts the
real model name into ``{model_name}``) it is replaced by a real 5.8 s recording on the loopback
origin: the generated ``timestamp``/``num_speakers``/``min_speakers``/``max_speakers``/
``exclusive`` values then reach the pipeline.
"""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from fuzzing import examples, fuzz_service  # noqa: E402

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(diarizer, origin):
    def real_audio(case, real):
        if real and case.operation.path == "/diarize":
            case.query = {**(case.query or {}), "audio_file_url": f"{origin}/audio/test_short.wav"}

    fuzz_service(diarizer, "diarizer", max_examples=examples("diarizer", 30), prepare=real_audio).check()
