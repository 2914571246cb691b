"""Schemathesis against the Parakeet predictor's own OpenAPI schema, auth on (bounded for CI).

Shared fuzzing code: ``tests/fuzzing.py``; the service is the session's ``live`` one. A generated
``audio_file_url`` is an arbitrary string the URL guard refuses, so on half of the URL-route cases
(the coin that also puts the real model name into ``{model_name}``) it is replaced by a real 5.8 s
recording on the loopback origin, and on the upload routes a real clip goes in as ``file``: the
generated language, offset and format options then reach the model.
"""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from fuzzing import examples, fuzz_service, real_transcription_audio  # noqa: E402
from support import shared_audio  # noqa: E402

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(live, origin):
    prepare = real_transcription_audio(origin, shared_audio("test_short.wav").read_bytes())
    fuzz_service(live, "parakeet", max_examples=examples("parakeet", 40), prepare=prepare, min_operations=5).check()
