"""Diarizer: our server vs a direct pyannote pipeline call, real-time factor, memory on long audio.

1. ``POST /diarize`` on meeting_three_voices (110 s) vs the same pipeline called directly on the
   decoded waveform in this process (target: server <= 1.1x direct).
2. Real-time factor of the direct call on this machine.
3. Peak memory (VmHWM) of a fresh server process diarizing a 30-minute recording built by
   concatenating the fixtures (``BENCH_LONG_MIN`` minutes; 0 skips it), next to its memory once
   the pipeline is loaded.
Same pipeline everywhere: the packaged one (pyannote PyanNet segmentation from the whisperx
wheel + Resemblyzer encoder), CPU.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import (
    AUDIO,
    AUTH,
    REPEATS,
    REPO,
    LocalService,
    best,
    file_origin,
    local_service,
    report,
    require_audio,
    rss_mb,
    write_wav,
)

LONG_MIN = float(os.environ.get("BENCH_LONG_MIN", "30"))


def _diarize(server: LocalService, url: str, timeout: float = 7200) -> list[dict]:
    r = httpx.post(server.base + "/diarize", params={"audio_file_url": url}, headers=AUTH, timeout=timeout)
    r.raise_for_status()
    return r.json()["diarization"]


def _long_recording(path: Path) -> None:
    """``LONG_MIN`` minutes made of the fixtures one after another, as a WAV file."""
    from rgpu_asr.audio import decode_file

    pieces, total = [], 0
    fixtures = [
        decode_file(AUDIO / n) for n in ("meeting_three_voices.wav", "two_speakers.wav", "test_mathieu_hello.wav")
    ]
    while total < LONG_MIN * 60 * 16000:
        for f in fixtures:
            pieces.append(f)
            total += len(f)
    write_wav(path, np.concatenate(pieces)[: int(LONG_MIN * 60 * 16000)])


def main() -> None:
    from rgpu_asr.audio import decode_file
    from rgpu_asr.models import resolve_model
    from rgpu_diarizer.pipeline import FAMILY, load_pipeline, run
    from rgpu_local.diarizer_weights import packaged_pipeline_dir

    require_audio()
    pipeline_dir = packaged_pipeline_dir(REPO / ".cache", download=True)
    meeting = AUDIO / "meeting_three_voices.wav"
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-bench-"))
    (tmp / "meeting.wav").write_bytes(meeting.read_bytes())
    env = {
        "REFLECTOR_GPU_URL_ALLOWLIST": "127.0.0.1",
        "REFLECTOR_GPU_LOCAL_PREDICTORS": "diarizer",
        "REFLECTOR_GPU_DIARIZER_MODEL": str(pipeline_dir),
        "REFLECTOR_GPU_FETCH_TOTAL_TIMEOUT_S": "7200",
    }
    results: dict[str, float] = {}

    with file_origin(tmp) as origin:
        with local_service("diarizer", env, tmp / "uploads") as server:
            pipeline = load_pipeline(resolve_model(FAMILY, str(pipeline_dir), shared=""), device="cpu")
            duration = len(decode_file(meeting)) / 16000

            def server_call():
                _diarize(server, f"{origin}/meeting.wav")

            def direct_call():
                run(pipeline, decode_file(meeting))

            server_call()  # warm-up both sides
            direct_call()
            results["server_s"] = best(server_call)
            results["direct_s"] = best(direct_call)
            results["audio_s"] = duration
            results["server_peak_rss_mb"] = rss_mb(server.pid)
            results["direct_process_peak_rss_mb"] = rss_mb()

        if LONG_MIN > 0:
            _long_recording(tmp / "long.wav")
            with local_service("diarizer", env, tmp / "uploads") as server:
                results["long_loaded_rss_mb"] = rss_mb(server.pid, "VmRSS:")
                t0 = time.perf_counter()
                segments = _diarize(server, f"{origin}/long.wav")
                results["long_s"] = time.perf_counter() - t0
                results["long_audio_s"] = LONG_MIN * 60
                results["long_speakers"] = len({s["speaker"] for s in segments})
                results["long_peak_rss_mb"] = rss_mb(server.pid)
    shutil.rmtree(tmp, ignore_errors=True)

    r = results
    lines = [
        f"Diarizer (packaged pipeline: pyannote PyanNet + Resemblyzer), CPU, best of {REPEATS}",
        f"  meeting_three_voices ({r['audio_s']:.0f} s): server {r['server_s']:.2f} s, direct pipeline call "
        f"{r['direct_s']:.2f} s -> server/direct = {r['server_s'] / r['direct_s']:.2f}x (target <= 1.1)",
        f"  real-time factor (direct): {r['direct_s'] / r['audio_s']:.3f}; server: {r['server_s'] / r['audio_s']:.3f}",
        f"  peak memory: server process {r['server_peak_rss_mb']:.0f} MiB, "
        f"direct-call process {r['direct_process_peak_rss_mb']:.0f} MiB",
    ]
    if "long_s" in r:
        lines.append(
            f"  {LONG_MIN:.0f}-minute recording: {r['long_s']:.1f} s (RTF {r['long_s'] / r['long_audio_s']:.3f}), "
            f"{r['long_speakers']} speakers; server memory {r['long_loaded_rss_mb']:.0f} MiB loaded -> "
            f"peak {r['long_peak_rss_mb']:.0f} MiB"
        )
    report("diarizer", results, lines)


if __name__ == "__main__":
    main()
