"""Helpers every benchmark uses: the local service, a loopback file origin, test clips, timing,
memory and the results file. Each job is written once here; the benchmarks only say what differs.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
RESULTS = REPO / "bench" / "results"
#: The API key every benchmark's service accepts.
KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: How many times each measured call runs; the fastest counts (``BENCH_REPEATS``).
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
SAMPLE_RATE = 16000

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def best_run(fn: Callable[[], T], repeats: int | None = None) -> tuple[float, T]:
    """(wall time, result) of the fastest of ``repeats`` (default ``REPEATS``) runs: the least
    disturbed by the machine."""
    fastest: tuple[float, T] | None = None
    for _ in range(max(1, REPEATS if repeats is None else repeats)):
        t0 = time.perf_counter()
        value = fn()
        dt = time.perf_counter() - t0
        if fastest is None or dt < fastest[0]:
            fastest = (dt, value)
    assert fastest is not None
    return fastest


def best(fn: Callable[[], Any], repeats: int | None = None) -> float:
    """Best wall time of ``repeats`` (default ``REPEATS``) runs."""
    return best_run(fn, repeats)[0]


def rss_mb(pid: int | str = "self", field: str = "VmHWM:") -> float:
    """A memory figure of a process from /proc (peak RSS by default), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_wav(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def allow_torchaudio() -> None:
    """Let this process import torchaudio (NeMo and transformers do) beside CPU torch: the shim
    local mode installs (see ``rgpu_asr.torchaudio_compat``); since issue 14 no import installs it."""
    from rgpu_asr import torchaudio_compat

    torchaudio_compat.install()


def require_audio() -> None:
    if not AUDIO.is_dir():
        sys.exit(f"benchmark audio not found at {AUDIO}")


def write_clips(directory: Path, count: int, seconds: float = 5.0, from_hello: int = 0) -> list[Path]:
    """``count`` different clips of ``seconds`` as WAV files: the first ``from_hello`` cut from
    test_mathieu_hello (real speech), the rest from meeting_three_voices (synthetic voices)."""
    from rgpu_asr.audio import decode_file

    n = int(seconds * SAMPLE_RATE)
    paths: list[Path] = []
    for name, k in (("test_mathieu_hello.wav", from_hello), ("meeting_three_voices.wav", count - from_hello)):
        if k <= 0:
            continue
        audio = decode_file(AUDIO / name)
        for i in range(k):
            path = directory / f"clip{len(paths)}.wav"
            write_wav(path, audio[i * n : (i + 1) * n])
            paths.append(path)
    return paths


def transcribe_from_url(base: str, url: str, timeout: float = 600) -> None:
    """One ``/v1/audio/transcriptions-from-url`` request; fail if it failed."""
    r = httpx.post(
        base + "/v1/audio/transcriptions-from-url", json={"audio_file_url": url}, headers=AUTH, timeout=timeout
    )
    r.raise_for_status()


def post_files_concurrently(base: str, paths: list[Path], route: str = "/v1/audio/transcriptions") -> None:
    """Upload every file at once (one request each) and fail if any request failed."""

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=600) as c:
            return await asyncio.gather(*(c.post(route, files={"file": (p.name, p.read_bytes())}) for p in paths))

    for r in asyncio.run(send()):
        r.raise_for_status()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Run ``server`` on a thread for the duration; yields its base URL."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{server.server_address[0]}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def file_origin(directory: Path) -> AbstractContextManager[str]:
    """Serve ``directory`` over HTTP on loopback (the URL routes fetch from it); yields its base URL."""
    return serving(ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(directory))))


class LocalService:
    """``python -m rgpu_local`` started with the benchmark's ``env`` on a free port, with the bench
    key; its output goes to ``<upload_dir>.log``. ``model`` is the name whose readiness counts."""

    def __init__(self, model: str, env: dict[str, str], upload_dir: Path):
        self.model = model
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = upload_dir.with_name(upload_dir.name + ".log")
        full_env = {
            **os.environ,
            "PORT": str(self.port),
            "REFLECTOR_GPU_APIKEY": KEY,
            "REFLECTOR_GPU_LOG_LEVEL": "WARNING",
            "REFLECTOR_GPU_UPLOAD_DIR": str(upload_dir),
            **env,
        }
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rgpu_local"], env=full_env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _fail(self, why: str) -> None:
        tail = self.log_path.read_text(errors="replace")[-3000:]
        sys.exit(f"{self.model} server {why}; its log ends:\n{tail}")

    def wait_ready(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/v2/models/{self.model}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                self._fail(f"exited with {self.proc.returncode}")
            time.sleep(0.3)
        self._fail(f"was not ready in {timeout_s:.0f} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def local_services(*services: tuple[str, dict[str, str], Path]) -> Iterator[list[LocalService]]:
    """Start one local service per ``(model, env, upload_dir)`` (all at once, so they load side by
    side), wait until each is ready, yield them, and stop them all on the way out."""
    started: list[LocalService] = []
    try:
        for model, env, upload_dir in services:
            started.append(LocalService(model, env, upload_dir))
        for service in started:
            service.wait_ready()
        yield started
    finally:
        for service in started:
            service.stop()


@contextmanager
def local_service(model: str, env: dict[str, str], upload_dir: Path) -> Iterator[LocalService]:
    """One local service, ready; stopped on the way out."""
    with local_services((model, env, upload_dir)) as (service,):
        yield service


def report(name: str, results: dict[str, Any], lines: list[str]) -> None:
    """Print a benchmark's figures and write its raw results to ``bench/results/<name>.json``."""
    print()
    for line in lines:
        print(line)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2))
