"""Helpers every benchmark uses: ports, timing, memory, test audio files."""

from __future__ import annotations

import socket
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def best_run(fn, repeats: int) -> tuple[float, Any]:
    """(wall time, result) of the fastest of ``repeats`` runs: the least disturbed by the machine."""
    fastest: tuple[float, Any] | None = None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        value = fn()
        dt = time.perf_counter() - t0
        if fastest is None or dt < fastest[0]:
            fastest = (dt, value)
    assert fastest is not None
    return fastest


def best(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` runs."""
    return best_run(fn, repeats)[0]


def rss_mb(pid: int | str = "self", field: str = "VmHWM:") -> float:
    """A memory figure of a process from /proc (peak RSS by default), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
