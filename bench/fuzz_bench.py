"""The long fuzz run (issue 9): schemathesis against each predictor's own OpenAPI schema.

This runs the CI fuzz tests themselves (``tests/test_fuzz_http.py`` and
``tests/<name>/test_fuzz_<name>.py``, which share ``tests/fuzzing.py`` and start their services
with the tests' own fixtures) with many more examples per operation, collects each run's report
and prints operations, requests, the status tally, answers >= 500, RSS before/after and the
temporary files left.

    BENCH_FUZZ_EXAMPLES=500 python -m bench fuzz                     # every predictor
    BENCH_FUZZ_PREDICTORS=diarizer,padding python -m bench fuzz      # some
    python -m bench.fuzz_bench llm                                   # one, from the command line

``BENCH_FUZZ_EXAMPLES`` (500) is the examples per operation; the LLM gets
``BENCH_FUZZ_EXAMPLES_LLM`` (100: every generated request decodes tokens).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = {
    "whisper": "tests/test_fuzz_http.py",
    "parakeet": "tests/parakeet/test_fuzz_parakeet.py",
    "diarizer": "tests/diarizer/test_fuzz_diarizer.py",
    "translator": "tests/translator/test_fuzz_translator.py",
    "llm": "tests/llm/test_fuzz_llm.py",
    "padding": "tests/padding/test_fuzz_padding.py",
}


def _run(name: str, examples: int) -> tuple[dict | None, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.jsonl"
        env = {**os.environ, "RGPU_FUZZ_REPORT": str(report_path), f"RGPU_FUZZ_EXAMPLES_{name.upper()}": str(examples)}
        cmd = [sys.executable, "-m", "pytest", TESTS[name], "-q", "-p", "no:cacheprovider", "--timeout=0"]
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        lines = report_path.read_text().splitlines() if report_path.exists() else []
        if done.returncode != 0:
            print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
        return (json.loads(lines[-1]) if lines else None), done.returncode, wall


def main(argv: list[str] | None = None) -> None:
    names = argv or [
        n.strip() for n in os.environ.get("BENCH_FUZZ_PREDICTORS", ",".join(TESTS)).split(",") if n.strip()
    ]
    unknown = [n for n in names if n not in TESTS]
    if unknown:
        raise SystemExit(f"unknown predictor(s) {unknown}; choose from {', '.join(TESTS)}")
    default = int(os.environ.get("BENCH_FUZZ_EXAMPLES", "500"))
    print(f"fuzz: schemathesis from each predictor's /openapi.json, auth on; {default} examples per operation")
    print(
        f"{'predictor':<11}{'ops':>4}{'requests':>9}{'>=500':>6}{'RSS MiB':>14}{'tmp':>4}{'fuzz s':>8}{'wall s':>8}"
        "  statuses / result"
    )
    failed = []
    for name in names:
        examples = int(os.environ.get(f"BENCH_FUZZ_EXAMPLES_{name.upper()}", "100" if name == "llm" else default))
        report, code, wall = _run(name, examples)
        if report is None:
            print(f"{name:<11}  no report (pytest exit {code}: skipped or the service did not start)")
            failed.append(name)
            continue
        rss = f"{report['rss_before_mb']}->{report['rss_after_mb']}"
        print(
            f"{name:<11}{report['operations']:>4}{report['requests']:>9}{report['server_errors']:>6}{rss:>14}"
            f"{len(report['leftovers']):>4}{report['seconds']:>8.0f}{wall:>8.0f}  {report['statuses']}"
            f"{'' if code == 0 else '  FAILED'}"
        )
        for failure in report["failures"][:5]:
            print(f"    {failure[:300]}")
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
