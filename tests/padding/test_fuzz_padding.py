"""Schemathesis against the padding predictor's own OpenAPI schema, auth on (bounded for CI).

Shared fuzzing code: ``tests/fuzzing.py``. Generated ``track_url``/``output_url`` values are
arbitrary strings, so nearly every ``/pad`` request is refused by validation or the SSRF guard;
what is checked is that nothing answers >= 500, the process survives with its memory near the
baseline, and no temporary file is left.
"""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from fuzzing import examples, fuzz_service  # noqa: E402

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(padding):
    fuzz_service(padding, "padding", max_examples=examples("padding", 50)).check()
