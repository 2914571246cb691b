"""KServe container entry point: ``rgpu-diarizer --model_name diarizer --model_dir /mnt/models``."""

from __future__ import annotations

import argparse
import sys

import rgpu_contract as contract
from rgpu_serving.cli import run_predictors

from .predictor import build_predictor


def main(argv: list[str] | None = None) -> int:
    from kserve import model_server

    parser = argparse.ArgumentParser(parents=[model_server.parser], description=__doc__)
    parser.add_argument("--model_dir", default=contract.MODEL_DIR, help="directory KServe mounted the pipeline in")
    parser.add_argument("--host", default="0.0.0.0")
    args, _ = parser.parse_known_args(argv)
    name = args.model_name if args.model_name != "model" else "diarizer"
    return run_predictors([build_predictor(name, model_dir=args.model_dir)], args.host, args.http_port or contract.HTTP_PORT)


if __name__ == "__main__":
    sys.exit(main())
