"""Schemathesis against the running service's own OpenAPI schema, auth on (bounded for CI).

Every generated request on every route must get an answer below 500; afterwards the process
is alive, its memory is back near the baseline, and no temporary file is left (the ``service``
fixture checks the upload directory at teardown). ``bench/`` runs a longer version.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from support import KEYS  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("RGPU_FUZZ_EXAMPLES", "40"))
#: KServe's model-repository extension can unload the model; fuzzing it would test nothing
#: but our own ability to turn the service off.
EXCLUDED = ("/v2/repository/",)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def fuzz_schema(service):
    schema = schemathesis.openapi.from_url(service.base + "/openapi.json")
    return schema.exclude(path_regex="|".join(EXCLUDED))


@pytest.fixture(scope="module", autouse=True)
def memory_baseline(service):
    """Record RSS before the fuzz run; after it the process must be alive and near the baseline."""
    httpx.post(service.base + "/transcribe", headers={"Authorization": f"Bearer {KEYS[0]}"})  # warm allocators
    before = _rss_mb(service.proc.pid)
    yield
    assert service.proc.poll() is None, "the service died during fuzzing"
    after = _rss_mb(service.proc.pid)
    assert after < before + 300, f"RSS grew from {before:.0f} MiB to {after:.0f} MiB during fuzzing"


def _operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


def test_no_generated_request_gets_a_server_error(fuzz_schema, service):
    """Hypothesis-generated cases for every operation (schemathesis strategies, driven directly:
    its pytest plugin does not support pytest 9 yet)."""
    failures: list[str] = []
    statuses: dict[str, dict[int, int]] = {}
    operations = list(_operations(fuzz_schema))
    assert len(operations) >= 5, [op.label for op in operations]
    for op in operations:

        @given(case=op.as_strategy(), real_model=st.booleans())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case, real_model):
            if real_model and case.path_parameters and "model_name" in case.path_parameters:
                case.path_parameters["model_name"] = "whisper"  # reach the model, not only 404s
            response = case.call(base_url=service.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=120)
            per_op = statuses.setdefault(op.label, {})
            per_op[response.status_code] = per_op.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        run()
    total = sum(n for per_op in statuses.values() for n in per_op.values())
    print(f"\nfuzzed {len(operations)} operations with {total} requests:")
    for label, per_op in sorted(statuses.items()):
        print(f"  {label}: {dict(sorted(per_op.items()))}")
    assert not failures, "\n".join(failures[:20])
