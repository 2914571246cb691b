"""KServe container entry point: ``rgpu-whisper --model_name whisper --model_dir /mnt/models``."""

from __future__ import annotations

import sys

from rgpu_serving.cli import kserve_main

from .predictor import build_predictor


def main(argv: list[str] | None = None) -> int:
    return kserve_main("whisper", lambda name, model_dir: build_predictor(name, model_dir=model_dir), argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
