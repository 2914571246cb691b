"""KServe container entry point: ``rgpu-diarizer --model_name diarizer --model_dir /mnt/models``."""

from __future__ import annotations

import sys

from rgpu_asr import torchaudio_compat
from rgpu_serving.cli import kserve_main

from .predictor import build_predictor


def main(argv: list[str] | None = None) -> int:
    # pyannote imports torchaudio at module level; see rgpu_asr.torchaudio_compat for why.
    torchaudio_compat.install()
    return kserve_main("diarizer", lambda name, model_dir: build_predictor(name, model_dir=model_dir), argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
