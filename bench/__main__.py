"""Run every benchmark: ``python -m bench [whisper ...]``."""

from __future__ import annotations

import sys

from . import (
    diarized_bench,
    diarizer_bench,
    fuzz_bench,
    llm_bench,
    load_bench,
    parakeet_bench,
    realtime_bench,
    scaling_sim,
    whisper_bench,
)

BENCHES = {
    "whisper": whisper_bench.main,
    "parakeet": parakeet_bench.main,
    "diarizer": diarizer_bench.main,
    "diarized": diarized_bench.main,
    "llm": llm_bench.main,
    "load": load_bench.main,
    "fuzz": fuzz_bench.main,
    "realtime": realtime_bench.main,
    "scaling": scaling_sim.main,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    for name in names:
        BENCHES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
