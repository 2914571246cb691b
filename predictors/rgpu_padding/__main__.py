"""KServe container entry point: ``rgpu-padding --model_name padding`` (CPU, no model weights)."""

from __future__ import annotations

import sys

from rgpu_serving.cli import kserve_main

from .predictor import build_predictor


def main(argv: list[str] | None = None) -> int:
    return kserve_main("padding", lambda name, model_dir: build_predictor(name), argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
