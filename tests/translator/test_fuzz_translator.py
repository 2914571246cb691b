"""Schemathesis against the translator's own OpenAPI schema, auth on (bounded for CI).

Shared fuzzing code: ``tests/fuzzing.py``. ``/translate`` takes ``text`` in the query and the
languages in the query or a JSON body; generated texts with the default or generated language
pairs reach the tiny Marian models whenever the pair is en<->fr.
"""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from fuzzing import examples, fuzz_service  # noqa: E402

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(marian):
    fuzz_service(marian, "translator", max_examples=examples("translator", 60)).check()
