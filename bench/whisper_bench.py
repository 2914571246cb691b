"""Whisper: our server vs the bare library on the same audio, measured side by side.

1. ``/transcriptions-from-url`` on meeting_three_voices vs a direct ``BatchedInferencePipeline``
   call on the same file (target: server <= 1.15x direct).
2. The reference's way (VAD chunks transcribed one at a time) vs our server (target: >= 1.8x).
3. Eight concurrent 5 s clips through the server vs the same clips in one direct batched
   library call (target: server throughput >= 0.9x).
Peak memory (VmHWM) of the server process and of the direct-call process is reported too.
Same settings everywhere: Whisper base, CPU int8, beam 5, word timestamps, batch 8, language en.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.common import (
    AUDIO,
    REPEATS,
    best,
    file_origin,
    local_service,
    post_files_concurrently,
    report,
    require_audio,
    rss_mb,
    transcribe_from_url,
    write_clips,
)


def main() -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    from rgpu_asr.chunking import plan_chunks
    from rgpu_asr.vad import default_vad
    from rgpu_local.models import whisper_base_dir

    require_audio()
    model_dir = whisper_base_dir()
    meeting = AUDIO / "meeting_three_voices.wav"
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-bench-"))
    # 8 different 5 s clips of real and synthetic speech
    clip_paths = write_clips(tmp, 8, from_hello=3)

    env = {
        "REFLECTOR_GPU_URL_ALLOWLIST": "127.0.0.1",
        # Whisper alone: local mode otherwise also loads the diarizer, translator, LLM and padding
        # predictors in the same process, whose loading and memory have nothing to do with this ratio.
        "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper",
        "REFLECTOR_GPU_WHISPER_MODEL": str(model_dir),
    }
    with file_origin(AUDIO) as origin, local_service("whisper", env, tmp / "uploads") as server:
        url = f"{origin}/meeting_three_voices.wav"
        model = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
        pipeline = BatchedInferencePipeline(model)
        opts = dict(language="en", beam_size=5, word_timestamps=True)

        def server_file():
            transcribe_from_url(server.base, url)

        def direct_file():
            segments, _ = pipeline.transcribe(str(meeting), batch_size=8, **opts)
            list(segments)

        def reference_sequential():
            audio = decode_audio(str(meeting))
            for chunk in plan_chunks(default_vad().segments(audio)):
                segments, _ = model.transcribe(chunk.audio(audio), vad_filter=False, **opts)
                list(segments)

        def server_clips():
            post_files_concurrently(server.base, clip_paths)

        def direct_clips():
            audios = [decode_audio(str(p)) for p in clip_paths]
            pieces, stamps, pos = [], [], 0
            for a in audios:
                pieces.append(a)
                stamps.append({"start": pos / 16000, "end": (pos + len(a)) / 16000})
                pos += len(a)
            segments, _ = pipeline.transcribe(np.concatenate(pieces), clip_timestamps=stamps, batch_size=8, **opts)
            list(segments)

        server_file()  # warm-up both sides
        direct_file()
        results = {
            "server_from_url_s": best(server_file),
            "direct_batched_s": best(direct_file),
            "reference_sequential_s": best(reference_sequential, 1),
            "server_8_clips_s": best(server_clips),
            "direct_8_clips_s": best(direct_clips),
            "server_peak_rss_mb": rss_mb(server.pid),
            "direct_process_peak_rss_mb": rss_mb(),
        }

    r = results
    report(
        "whisper",
        results,
        [
            f"Whisper base int8, CPU, beam 5, word timestamps, batch 8 (best of {REPEATS})",
            f"  meeting_three_voices (110 s): server {r['server_from_url_s']:.2f} s, direct BatchedInferencePipeline "
            f"{r['direct_batched_s']:.2f} s -> server/direct = "
            f"{r['server_from_url_s'] / r['direct_batched_s']:.2f}x (target <= 1.15)",
            f"  reference one-chunk-at-a-time {r['reference_sequential_s']:.2f} s -> server is "
            f"{r['reference_sequential_s'] / r['server_from_url_s']:.2f}x faster (target >= 1.8)",
            f"  8 concurrent 5 s clips: server {r['server_8_clips_s']:.2f} s, one direct batched call "
            f"{r['direct_8_clips_s']:.2f} s -> server throughput = "
            f"{r['direct_8_clips_s'] / r['server_8_clips_s']:.2f}x of direct (target >= 0.9)",
            f"  peak memory: server process {r['server_peak_rss_mb']:.0f} MiB, "
            f"direct-call process {r['direct_process_peak_rss_mb']:.0f} MiB",
        ],
    )


if __name__ == "__main__":
    main()
