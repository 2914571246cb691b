"""``reflector-gpu-local``: the whole service on one port, on CPU, no Kubernetes.

Every available predictor's routes are served by one process; a predictor whose model cannot
be loaded answers 503 with the reason while the others keep working. Each predictor package
says how it is built locally in ``<package>.local:build(settings)``; a package that is not
installed is skipped with a log line.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import rgpu_contract as contract
from rgpu_asr import torchaudio_compat
from rgpu_serving.cli import run_predictors
from rgpu_serving.settings import ListenSettings, ServingSettings

log = logging.getLogger("rgpu.local")

#: Predictor name -> module with ``build(settings)``. Whisper and Parakeet serve the same
#: routes, so only one transcriber runs locally (``REFLECTOR_GPU_LOCAL_TRANSCRIBER``).
PREDICTORS = {
    "whisper": "rgpu_whisper.local",
    "parakeet": "rgpu_parakeet.local",
    "diarizer": "rgpu_diarizer.local",
    "translator": "rgpu_translator.local",
    "llm": "rgpu_llm.local",
    "padding": "rgpu_padding.local",
}
TRANSCRIBERS = ("whisper", "parakeet")


def selected(env: dict[str, str]) -> list[str]:
    """Predictors to serve: ``REFLECTOR_GPU_LOCAL_PREDICTORS`` or all but the other transcriber."""
    if env.get("REFLECTOR_GPU_LOCAL_PREDICTORS"):
        return [p.strip() for p in env["REFLECTOR_GPU_LOCAL_PREDICTORS"].split(",") if p.strip()]
    transcriber = env.get("REFLECTOR_GPU_LOCAL_TRANSCRIBER", "whisper")
    return [p for p in PREDICTORS if p not in TRANSCRIBERS or p == transcriber]


def main() -> int:
    # pyannote and NeMo import torchaudio; see rgpu_asr.torchaudio_compat for why this is needed.
    torchaudio_compat.install()
    listen = ListenSettings()
    # On a laptop the API docs are browsable without a key unless configured otherwise.
    settings = ServingSettings() if os.environ.get(contract.ENV_API_DOCS) else ServingSettings(api_docs="open")
    wanted = selected(dict(os.environ))
    unknown = [p for p in wanted if p not in PREDICTORS]
    if unknown:
        print(f"reflector-gpu: unknown predictors {unknown}; available: {', '.join(PREDICTORS)}", file=sys.stderr)
        return 2
    if len([p for p in wanted if p in TRANSCRIBERS]) > 1:
        print("reflector-gpu: whisper and parakeet serve the same routes; pick one", file=sys.stderr)
        return 2
    predictors = []
    for name in wanted:
        try:
            module = importlib.import_module(PREDICTORS[name])
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith(PREDICTORS[name].split(".")[0]):
                raise
            log.warning("predictor %s is not installed (%s); skipping it", name, PREDICTORS[name])
            continue
        predictors.append(module.build(settings))
    if not predictors:
        print("reflector-gpu: no predictor is installed; install with: pip install -e '.[local]'", file=sys.stderr)
        return 2
    if "diarizer" in wanted and any(p.name == "diarizer" for p in predictors):
        from rgpu_local.diarization import connect  # the diarizer package is installed

        connect(predictors)  # diarized transcription in one process: one decode, both at once
    base = f"http://{listen.host}:{listen.port}"
    auth = (
        "authentication is DISABLED"
        if settings.auth_disabled
        else "send 'Authorization: Bearer <key>' with a key from REFLECTOR_GPU_APIKEY or REFLECTOR_GPU_APIKEY_FILE"
    )
    banner = (
        f"reflector-gpu local mode: {base}  serving {', '.join(p.name for p in predictors)}  ({auth})\n"
        f"  try: curl -H 'Authorization: Bearer <key>' -F file=@recording.wav {base}/v1/audio/transcriptions\n"
        f"  readiness: {base}/v2/models/<name>/ready   metrics: {base}/metrics"
    )
    return run_predictors(predictors, listen.host, listen.port, banner=banner)


if __name__ == "__main__":
    sys.exit(main())
