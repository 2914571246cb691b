"""Schemathesis fuzzing of a running predictor through its own ``/openapi.json`` (issue 9).

One piece of code for every predictor's fuzz test (``tests/test_fuzz_http.py`` for Whisper,
``tests/<name>/test_fuzz_<name>.py`` for the others) and for the long run in
``bench/fuzz_bench.py``:

    report = fuzz_service(svc, "diarizer", max_examples=examples("diarizer", 10))
    report.check()

Every operation of the schema except KServe's model-repository load/unload gets
``max_examples`` hypothesis-generated requests with a valid API key; half of the requests
with a ``{model_name}`` path parameter have it replaced by the real model's name, so the
model is reached and not only 404s. A :class:`FuzzReport` holds the status tally per
operation, the answers >= 500, the RSS before and after, and what is left in the upload
directory; :meth:`FuzzReport.check` asserts zero 5xx, the process alive, RSS back near the
baseline and no temporary file left.

Schemathesis' pytest plugin does not support pytest 9 yet, so its strategies are driven with
hypothesis directly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import KEYS

#: KServe's model-repository extension can unload the model; fuzzing it would test nothing
#: but our own ability to turn the service off.
EXCLUDED = ("/v2/repository/",)
#: RSS may grow this much during a fuzz run (allocator caches, compiled grammars, loaded pairs).
RSS_GROWTH_LIMIT_MB = 300.0


def examples(name: str, default: int) -> int:
    """Examples per operation: ``RGPU_FUZZ_EXAMPLES_<NAME>``, else ``RGPU_FUZZ_EXAMPLES``, else ``default``."""
    return int(os.environ.get(f"RGPU_FUZZ_EXAMPLES_{name.upper()}") or os.environ.get("RGPU_FUZZ_EXAMPLES") or default)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_schema(base: str, excluded: tuple[str, ...] = EXCLUDED):
    import schemathesis

    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    return schema.exclude(path_regex="|".join(excluded)) if excluded else schema


@dataclass
class FuzzReport:
    predictor: str
    operations: list[str]
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    alive: bool = True
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    examples: int = 0
    #: The slowest requests: (seconds, "METHOD path -> status").
    slowest: list[tuple[float, str]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(n for per_op in self.statuses.values() for n in per_op.values())

    def tally(self) -> dict[int, int]:
        total: dict[int, int] = {}
        for per_op in self.statuses.values():
            for code, n in per_op.items():
                total[code] = total.get(code, 0) + n
        return dict(sorted(total.items()))

    def summary(self) -> str:
        lines = [
            f"{self.predictor}: fuzzed {len(self.operations)} operations with {self.requests} requests "
            f"({self.examples} examples each) in {self.seconds:.0f} s; statuses {self.tally()}; "
            f"{len(self.failures)} answers >= 500; RSS {self.rss_before_mb:.0f} -> {self.rss_after_mb:.0f} MiB; "
            f"alive {self.alive}; temporary files left {len(self.leftovers)}",
        ]
        for label, per_op in sorted(self.statuses.items()):
            lines.append(f"  {label}: {dict(sorted(per_op.items()))}")
        lines.append("  slowest: " + ", ".join(f"{label} {t:.1f} s" for t, label in self.slowest))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "predictor": self.predictor,
            "operations": len(self.operations),
            "requests": self.requests,
            "examples": self.examples,
            "statuses": {str(k): v for k, v in self.tally().items()},
            "server_errors": len(self.failures),
            "failures": self.failures[:20],
            "rss_before_mb": round(self.rss_before_mb),
            "rss_after_mb": round(self.rss_after_mb),
            "alive": self.alive,
            "leftovers": self.leftovers,
            "seconds": round(self.seconds, 1),
            "slowest": [[round(t, 1), label] for t, label in self.slowest],
        }

    def check(self, max_growth_mb: float = RSS_GROWTH_LIMIT_MB) -> None:
        assert self.alive, f"{self.predictor}: the service died during fuzzing"
        assert not self.failures, "\n".join(self.failures[:20])
        assert self.rss_after_mb < self.rss_before_mb + max_growth_mb, (
            f"{self.predictor}: RSS grew from {self.rss_before_mb:.0f} MiB to {self.rss_after_mb:.0f} MiB "
            "during fuzzing"
        )
        assert not self.leftovers, f"{self.predictor}: temporary files left after fuzzing: {self.leftovers}"


def _leftovers(upload_dir: Path | None, wait_s: float = 5.0) -> list[str]:
    """Files in the upload directory once in-flight work settled (cancelled requests clean up asynchronously)."""
    if upload_dir is None:
        return []
    deadline = time.monotonic() + wait_s
    while True:
        left = sorted(p.name for p in upload_dir.glob("*")) if upload_dir.exists() else []
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def real_transcription_audio(origin: str, clip: bytes, name: str = "test_short.wav") -> Callable[[Any, bool], None]:
    """A ``prepare`` for the shared transcription routes: when ``real``, the URL route gets
    ``{origin}/audio/{name}`` and the upload routes get ``clip`` as ``file`` (generated strings
    and bytes are never fetchable or audio), so the generated options reach the model."""

    def prepare(case, real: bool) -> None:
        if not real or not isinstance(case.body, dict):
            return
        if case.operation.path.endswith("transcriptions-from-url"):
            case.body["audio_file_url"] = f"{origin}/audio/{name}"
        elif case.operation.path in ("/v1/audio/transcriptions", "/transcribe"):
            case.body["file"] = clip

    return prepare


def fuzz(
    base: str,
    predictor: str,
    *,
    max_examples: int,
    pid: int | None = None,
    upload_dir: Path | None = None,
    warm: Callable[[], Any] | None = None,
    prepare: Callable[[Any, bool], None] | None = None,
    key: str = KEYS[0],
    timeout: float = 120,
    min_operations: int = 3,
) -> FuzzReport:
    """Fuzz every operation of the service at ``base``; ``predictor`` is its model name.

    ``warm()`` runs before the RSS baseline is taken; ``prepare(case, real)`` may adjust a
    generated case before it is sent, e.g. put a real audio URL in when ``real`` (the same coin
    that substitutes the model name) so the generated options reach the model; the calling test
    says why."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    operations = [result.ok() for result in load_schema(base).get_all_operations()]
    report = FuzzReport(predictor, [op.label for op in operations], examples=max_examples)
    assert len(operations) >= min_operations, report.operations
    if warm is not None:
        warm()
    if pid is not None:
        report.rss_before_mb = rss_mb(pid)
    headers = {"Authorization": f"Bearer {key}"}
    started = time.monotonic()
    for op in operations:

        @given(case=op.as_strategy(), real_model=st.booleans())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case, real_model):
            if real_model and case.path_parameters and "model_name" in case.path_parameters:
                case.path_parameters["model_name"] = predictor  # reach the model, not only 404s
            if prepare is not None:
                prepare(case, real_model)
            t0 = time.monotonic()
            response = case.call(base_url=base, headers=headers, timeout=timeout)
            label = op.label  # noqa: B023 - run() is called within this iteration (hypothesis' loop)
            report.slowest = sorted(
                [*report.slowest, (time.monotonic() - t0, f"{label} -> {response.status_code}")], reverse=True
            )[:5]
            per_op = report.statuses.setdefault(label, {})
            per_op[response.status_code] = per_op.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                report.failures.append(
                    f"{case.method} {case.formatted_path} query={case.query!r} body={str(case.body)[:300]!r} "
                    f"-> {response.status_code}: {response.text[:300]}"
                )

        run()
    report.seconds = time.monotonic() - started
    if pid is not None:
        try:
            os.kill(pid, 0)
            report.alive = Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0
        except OSError:
            report.alive = False
        report.rss_after_mb = rss_mb(pid) if report.alive else 0.0
    report.leftovers = _leftovers(upload_dir)
    print("\n" + report.summary())
    if out := os.environ.get("RGPU_FUZZ_REPORT"):  # bench/fuzz_bench.py collects these
        with open(out, "a") as f:
            f.write(json.dumps(report.as_dict()) + "\n")
    return report


def fuzz_service(svc, predictor: str, *, max_examples: int, **kw) -> FuzzReport:
    """:func:`fuzz` against a running ``support.Service``."""
    report = fuzz(svc.base, predictor, max_examples=max_examples, pid=svc.proc.pid, upload_dir=svc.upload_dir, **kw)
    report.alive = report.alive and svc.proc.poll() is None
    return report
