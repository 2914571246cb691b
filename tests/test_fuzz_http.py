"""Schemathesis against the running service's own OpenAPI schema, auth on (bounded for CI).

Every generated request on every route must get an answer below 500; afterwards the process
is alive, its memory is back near the baseline, and no temporary file is left (checked right
after the run, and again by the ``service`` fixture at teardown). The fuzzing itself is
``tests/fuzzing.py``, shared with every predictor's fuzz test and ``bench/fuzz_bench.py``
(the longer run). ``RGPU_FUZZ_EXAMPLES`` raises the examples per operation.
"""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from fuzzing import examples, fuzz_service, real_transcription_audio  # noqa: E402
from support import KEYS, shared_audio  # noqa: E402

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(service, origin):
    report = fuzz_service(
        service,
        "whisper",
        max_examples=examples("whisper", 40),
        min_operations=5,
        # on half of the transcription cases a real clip/URL goes in, so the generated options reach the model
        prepare=real_transcription_audio(origin, shared_audio("test_short.wav").read_bytes()),
        # warm the allocators before the RSS baseline
        warm=lambda: httpx.post(service.base + "/transcribe", headers={"Authorization": f"Bearer {KEYS[0]}"}),
    )
    report.check()
