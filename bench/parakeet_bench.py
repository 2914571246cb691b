"""Parakeet: our server vs a direct NeMo ``model.transcribe`` on the same audio, side by side.

No Parakeet weights exist offline, so both sides load the same random-weight FastConformer-TDT
``.nemo`` (``rgpu_local.parakeet_synthetic``; preset ``BENCH_PARAKEET_PRESET``: ``small`` ~14 M parameters
by default on CPU, ``full`` = parakeet-tdt-0.6b-v2's 0.6 B architecture for a GPU). Compute is
real (encoder, TDT greedy decoding, timestamps); only the text is meaningless.

1. ``/transcriptions-from-url`` on meeting_three_voices (file profile) vs one direct
   ``model.transcribe([wav], timestamps=True)`` on the same file (target: server <= 1.15x direct),
   and vs the server's own plan done by hand (decode, VAD chunks, batched ``transcribe`` calls):
   the pure server overhead.
2. Ten concurrent 5 s clips through the live profile vs the same ten clips in one direct
   batched ``transcribe`` call (target: server throughput >= 0.9x of direct).
3. With ``BENCH_PARAKEET_LONG_S`` (e.g. 3600): RTFx of the file path on that much audio (the
   meeting tiled), the figure to hold against the Open ASR leaderboard's 3386 on a GPU.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.common import (
    AUDIO,
    REPEATS,
    REPO,
    allow_torchaudio,
    best,
    file_origin,
    local_services,
    post_files_concurrently,
    report,
    require_audio,
    transcribe_from_url,
    write_clips,
    write_wav,
)

PRESET = os.environ.get("BENCH_PARAKEET_PRESET", "small")
LONG_S = float(os.environ.get("BENCH_PARAKEET_LONG_S", "0"))
#: torch CPU threads on both sides (1 by default: on a small shared box more threads only contend).
CPU_THREADS = int(os.environ.get("BENCH_PARAKEET_CPU_THREADS", "1"))


def _model_path() -> Path:
    from rgpu_local.parakeet_synthetic import VERSION, build_tdt_nemo

    nemo = importlib.metadata.version("nemo_toolkit")
    path = REPO / ".cache" / "parakeet" / f"parakeet-{PRESET}-tdt-v{VERSION}-nemo{nemo}.nemo"
    if not path.is_file():
        build_tdt_nemo(path, PRESET)
    return path


def _service(profile: str, model: Path, tmp: Path) -> tuple[str, dict[str, str], Path]:
    env = {
        "REFLECTOR_GPU_URL_ALLOWLIST": "127.0.0.1",
        "REFLECTOR_GPU_LOCAL_PREDICTORS": "parakeet",
        "REFLECTOR_GPU_PARAKEET_MODEL": str(model),
        "REFLECTOR_GPU_PARAKEET_DEVICE": os.environ.get("REFLECTOR_GPU_PARAKEET_DEVICE", "auto"),
        "REFLECTOR_GPU_PARAKEET_CPU_THREADS": str(CPU_THREADS),
        "REFLECTOR_GPU_PROFILE": profile,
    }
    return "parakeet", env, tmp / f"uploads-{profile}"


def main() -> None:
    allow_torchaudio()  # before NeMo, which imports torchaudio
    import torch
    from nemo.collections.asr.models import ASRModel

    from rgpu_asr.audio import decode_file
    from rgpu_asr.chunking import plan_chunks
    from rgpu_asr.vad import default_vad
    from rgpu_parakeet.engine import ParakeetEngine, pick_device, pick_dtype, quiet_nemo

    require_audio()
    quiet_nemo()
    if CPU_THREADS > 0:
        torch.set_num_threads(CPU_THREADS)
    model_path = _model_path()
    meeting = AUDIO / "meeting_three_voices.wav"
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-bench-parakeet-"))

    clip_paths = write_clips(tmp, 10, from_hello=3)
    if LONG_S:
        meet = decode_file(meeting)
        reps = int(np.ceil(LONG_S * 16000 / len(meet)))
        write_wav(tmp / "long.wav", np.tile(meet, reps)[: int(LONG_S * 16000)])
    (tmp / "meeting.wav").write_bytes(meeting.read_bytes())

    with (
        file_origin(tmp) as origin,
        local_services(_service("file", model_path, tmp), _service("live", model_path, tmp)) as (file_srv, live_srv),
    ):
        url = f"{origin}/meeting.wav"
        device = pick_device(os.environ.get("REFLECTOR_GPU_PARAKEET_DEVICE", "auto"))
        model = ASRModel.restore_from(str(model_path), map_location=torch.device(device))
        model.eval()
        ParakeetEngine._enable_timestamps(model)
        dtype = pick_dtype("auto", device)

        def direct(audio, batch_size):
            ctx = torch.autocast("cuda", dtype=dtype) if dtype is not None else torch.inference_mode()
            with torch.inference_mode(), ctx:
                return model.transcribe(audio, batch_size=batch_size, timestamps=True, verbose=False)

        def server_file(u=url):
            transcribe_from_url(file_srv.base, u, timeout=3600)

        def direct_file():
            direct([str(meeting)], 1)

        def direct_chunked():
            # The server's own plan done by hand: decode, VAD chunks, one batched call per 8 chunks.
            audio = decode_file(meeting)
            chunks = [c.audio(audio) for c in plan_chunks(default_vad().segments(audio), 30.0, 0.5)]
            for i in range(0, len(chunks), 8):
                direct(chunks[i : i + 8], 8)

        def server_clips():
            post_files_concurrently(live_srv.base, clip_paths)

        def direct_clips():
            direct([decode_file(p) for p in clip_paths], len(clip_paths))

        server_file()  # warm-up every side
        direct_file()
        direct_chunked()
        server_clips()
        direct_clips()
        results = {
            "preset": PRESET,
            "device": device,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "server_from_url_s": best(server_file),
            "direct_file_s": best(direct_file),
            "direct_chunked_s": best(direct_chunked),
            "server_10_clips_s": best(server_clips),
            "direct_10_clips_s": best(direct_clips),
        }
        if LONG_S:
            long_url = url.replace("meeting.wav", "long.wav")
            results["long_audio_s"] = LONG_S
            results["server_long_s"] = best(lambda: server_file(long_url), 1)
            results["server_long_rtfx"] = LONG_S / results["server_long_s"]

    r = results
    lines = [
        f"Parakeet ({r['preset']} random-weight FastConformer-TDT, {r['params_m']:.1f} M parameters, {r['device']}, "
        f"timestamps, {CPU_THREADS or 'default'} CPU thread(s), best of {REPEATS})",
        f"  meeting_three_voices (110 s), file profile: server {r['server_from_url_s']:.2f} s, direct "
        f"model.transcribe {r['direct_file_s']:.2f} s -> server/direct = "
        f"{r['server_from_url_s'] / r['direct_file_s']:.2f}x (target <= 1.15)",
        f"  same file, direct VAD chunks in batched transcribe calls (the server's plan without the server) "
        f"{r['direct_chunked_s']:.2f} s -> server overhead = {r['server_from_url_s'] / r['direct_chunked_s']:.2f}x",
        f"  10 concurrent 5 s clips, live profile: server {r['server_10_clips_s']:.2f} s, one direct batched call "
        f"{r['direct_10_clips_s']:.2f} s -> server throughput = "
        f"{r['direct_10_clips_s'] / r['server_10_clips_s']:.2f}x of direct (target >= 0.9)",
    ]
    if LONG_S:
        lines.append(
            f"  {LONG_S:.0f} s of audio through the file path: {r['server_long_s']:.1f} s "
            f"-> RTFx {r['server_long_rtfx']:.0f}"
        )
    report("parakeet", results, lines)


if __name__ == "__main__":
    main()
