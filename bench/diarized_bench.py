"""Speaker-attributed transcription: one call vs two calls, wall time, WER and cpWER.

On ``shared/audio/meeting_three_voices.wav`` (110 s, three voices; reference text and speaker
turns in its JSON), with ``num_speakers=3`` (the hint) and without it, three ways:

1. **one call**: ``diarized_json`` (upload) and ``diarize: true`` (URL) on the transcriber, which
   transcribes while the diarizer diarizes;
2. **two calls one after the other**: ``transcriptions-from-url`` on the transcriber, then
   ``/diarize`` on the diarizer (what Reflector does today);
3. **merged**: the results of (2) joined by the same assignment function
   (``rgpu_asr.speakers.attribute``), so (1) and (3) differ only in how they ran.

Separate pods on this machine: the transcriber (Whisper KServe entry point) and the diarizer
(diarizer KServe entry point) are two processes pinned to one core each with ``taskset`` (and one
compute thread each), the transcriber calling the diarizer over HTTP as in the cluster; the same
two processes serve the two-call runs. A last row runs the local mode (both engines in one process,
one decode; one thread each, not pinned) for comparison.

Prints wall times (best of ``BENCH_REPEATS``), their ratio to the sequential pair, plain WER and
cpWER (docs/diarizer.md defines it). Targets: one call <= 0.75x the sequential pair; cpWER of one
call no worse than the merged pair; with the hint, cpWER at most 5 points above plain WER.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.common import best_run, free_port
from bench.speaker_metrics import by_speaker, cpwer, wer

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
KEY = "bench-key"
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
LOCAL = os.environ.get("BENCH_DIARIZED_LOCAL", "1") != "0"
CORES = (0, 1) if (os.cpu_count() or 1) >= 2 else (0, 0)


class _Process:
    """A service process (a KServe entry point or the local mode), optionally pinned to a core."""

    def __init__(self, args: list[str], env: dict[str, str], ready: list[str], core: int | None, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, "REFLECTOR_GPU_APIKEY": KEY, "REFLECTOR_GPU_LOG_LEVEL": "WARNING", **env}
        full["PORT"] = str(self.port)
        if args[:1] != ["rgpu_local"]:
            args = [*args, "--http_port", str(self.port), "--host", "127.0.0.1"]
            full.setdefault("REFLECTOR_GPU_METRICS_PORT", str(free_port()))
        command = [sys.executable, "-m", *args]
        if core is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(core), *command]
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(command, env=full, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        pending = list(ready)
        while pending:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/v2/models/{pending[0]}/ready", timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.5)

    def post(self, path: str, **kwargs: Any) -> dict:
        r = httpx.post(self.base + path, headers={"Authorization": f"Bearer {KEY}"}, timeout=1800, **kwargs)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def _timed(fn) -> tuple[float, Any]:
    return best_run(fn, REPEATS)


def _scores(words: list[dict], reference: dict) -> tuple[float, float]:
    ref_by_speaker = by_speaker((t["speaker"], t["text"]) for t in reference["turns"])
    hyp = " ".join(w["word"] for w in words)
    return wer(reference["text"], hyp), cpwer(ref_by_speaker, by_speaker((w["speaker"], w["word"]) for w in words))


def _merge(transcript: dict, diarization: list[dict]) -> list[dict]:
    """The two-call results joined by the same pure function the one call uses."""
    from rgpu_asr.speakers import SpeakerTurn, attribute
    from rgpu_asr.types import Transcript, Word

    words = [Word(w["word"], w["start"], w["end"]) for w in transcript["words"]]
    t = Transcript(transcript["text"], words, [], "en", words[-1].end if words else 0.0)
    turns = [SpeakerTurn(d["start"], d["end"], d["speaker"]) for d in diarization]
    d = attribute(t, turns)
    return [{"word": w.word, "start": w.start, "end": w.end, "speaker": w.speaker} for w in d.words]


def main() -> None:
    from rgpu_local.diarizer_weights import packaged_pipeline_dir
    from rgpu_local.models import whisper_base_dir

    if not AUDIO.is_dir():
        sys.exit(f"benchmark audio not found at {AUDIO}")
    meeting = AUDIO / "meeting_three_voices.wav"
    reference = json.loads((AUDIO / "meeting_three_voices.json").read_text())
    pipeline = packaged_pipeline_dir(REPO / ".cache", download=True)
    whisper = whisper_base_dir(REPO / ".cache")
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-diarized-bench-"))
    (tmp / "meeting.wav").write_bytes(meeting.read_bytes())

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp)))
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{origin.server_address[1]}/meeting.wav"
    common = {"REFLECTOR_GPU_URL_ALLOWLIST": "127.0.0.1", "HF_HUB_OFFLINE": "1"}
    diarizer_env = {"REFLECTOR_GPU_DIARIZER_MODEL": str(pipeline), "REFLECTOR_GPU_DIARIZER_CPU_THREADS": "1"}
    whisper_env = {"REFLECTOR_GPU_WHISPER_MODEL": str(whisper), "REFLECTOR_GPU_WHISPER_CPU_THREADS": "1"}
    audio = meeting.read_bytes()
    rows: dict[str, dict[str, Any]] = {}

    diarizer = _Process(
        ["rgpu_diarizer", "--model_name", "diarizer"],
        {**common, **diarizer_env, "REFLECTOR_GPU_UPLOAD_DIR": str(tmp / "d")},
        ["diarizer"],
        CORES[1],
        tmp / "diarizer.log",
    )
    transcriber = _Process(
        ["rgpu_whisper", "--model_name", "whisper"],
        {
            **common,
            **whisper_env,
            "REFLECTOR_GPU_UPLOAD_DIR": str(tmp / "t"),
            "REFLECTOR_GPU_DIARIZATION_URL": diarizer.base,
            "REFLECTOR_GPU_DIARIZATION_APIKEY": KEY,
        },
        ["whisper"],
        CORES[0],
        tmp / "transcriber.log",
    )
    try:
        for hint in (3, None):
            tag = "hint" if hint else "free"
            hints = {"num_speakers": hint} if hint else {}
            form = {"response_format": "diarized_json", **({"num_speakers": str(hint)} if hint else {})}

            def upload(form=form) -> list[dict]:
                body = transcriber.post("/v1/audio/transcriptions", files={"file": ("m.wav", audio)}, data=form)
                return body["words"]

            def from_url(hints=hints) -> list[dict]:
                return transcriber.post(
                    "/v1/audio/transcriptions-from-url", json={"audio_file_url": url, "diarize": True, **hints}
                )["words"]

            def pair(hints=hints) -> tuple[dict, list[dict]]:
                transcript = transcriber.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": url})
                turns = diarizer.post("/diarize", json={"audio_file_url": url, "exclusive": True, **hints})
                return transcript, turns["diarization"]

            if hint:
                upload()  # warm-up of both processes
            seq_s, (transcript, turns) = _timed(pair)
            up_s, up_words = _timed(upload)
            url_s, url_words = _timed(from_url)
            rows[f"one call, upload diarized_json [{tag}]"] = {"s": up_s, "seq": seq_s, "words": up_words}
            rows[f"one call, URL diarize: true [{tag}]"] = {"s": url_s, "seq": seq_s, "words": url_words}
            rows[f"two calls one after the other [{tag}]"] = {"s": seq_s, "seq": seq_s, "words": None}
            rows[f"two calls merged, same function [{tag}]"] = {
                "s": None,
                "seq": seq_s,
                "words": _merge(transcript, turns),
            }
    finally:
        transcriber.stop()
        diarizer.stop()

    if LOCAL:
        local = _Process(
            ["rgpu_local"],
            {
                **common,
                **diarizer_env,
                **whisper_env,
                "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper,diarizer",
                "REFLECTOR_GPU_UPLOAD_DIR": str(tmp / "l"),
            },
            ["whisper", "diarizer"],
            None,
            tmp / "local.log",
        )
        try:
            form = {"response_format": "diarized_json", "num_speakers": "3"}
            local.post("/v1/audio/transcriptions", files={"file": ("m.wav", audio)}, data=form)
            s, body = _timed(
                lambda: local.post("/v1/audio/transcriptions", files={"file": ("m.wav", audio)}, data=form)
            )
            seq = rows["two calls one after the other [hint]"]["seq"]
            rows["local mode, one process, upload [hint]"] = {"s": s, "seq": seq, "words": body["words"]}
        finally:
            local.stop()
    origin.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\nDiarized transcription, meeting_three_voices (110 s, 3 voices), Whisper base int8 + packaged "
        f"pyannote/Resemblyzer, transcriber on core {CORES[0]}, diarizer on core {CORES[1]} (best of {REPEATS})"
    )
    print(f"  {'way':44}{'wall s':>8}{'x seq':>7}{'WER':>7}{'cpWER':>7}")
    results: dict[str, Any] = {}
    for name, row in rows.items():
        wall = f"{row['s']:.1f}" if row["s"] is not None else "-"
        ratio = f"{row['s'] / row['seq']:.2f}" if row["s"] is not None else "-"
        plain, cp = _scores(row["words"], reference) if row["words"] is not None else (None, None)
        scores = f"{plain:7.3f}{cp:7.3f}" if plain is not None else f"{'-':>7}{'-':>7}"
        print(f"  {name:44}{wall:>8}{ratio:>7}{scores}")
        results[name] = {"wall_s": row["s"], "ratio_to_sequential": None if row["s"] is None else row["s"] / row["seq"]}
        results[name] |= {"wer": plain, "cpwer": cp}
    hint = "[hint]"
    one = results[f"one call, upload diarized_json {hint}"]
    merged = results[f"two calls merged, same function {hint}"]
    checks = [
        ("one call <= 0.75x the sequential pair", one["ratio_to_sequential"] <= 0.75),
        ("one-call cpWER no worse than the merged pair", one["cpwer"] <= merged["cpwer"] + 1e-9),
        ("with the hint, cpWER <= plain WER + 0.05", one["cpwer"] <= one["wer"] + 0.05),
    ]
    for what, ok in checks:
        print(f"  target: {what}: {'met' if ok else 'NOT met'}")
    free = results["one call, upload diarized_json [free]"]
    print(f"  without the hint: cpWER {free['cpwer']:.3f} against plain WER {free['wer']:.3f}")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "diarized.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
