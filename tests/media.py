"""Small synthetic media the tests build on the fly (the real recordings are in ../shared/audio)."""

from __future__ import annotations

import io
import wave

import numpy as np


def tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    """A 16 kHz sine at 0.3 of full scale."""
    return 0.3 * np.sin(2 * np.pi * freq * np.arange(int(16000 * seconds)) / 16000)


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono 16-bit WAV of float samples in [-1, 1]."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def tone_wav(seconds: float, freq: float = 220.0) -> bytes:
    return wav_bytes(tone(seconds, freq))


def video_only_mp4() -> bytes:
    """A valid MP4 with one video stream and no audio stream."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def espeak_wav(text: str, voice: str, speed: int = 175) -> bytes:
    """Synthetic speech from espeak-ng (Debian's ``espeak-ng``; CI installs it).

    Without it the test cannot run here: skipped with the reason on a developer machine, a
    failure under CI (``CI`` set), where a missing install step must not pass unnoticed.
    """
    import os
    import shutil
    import subprocess
    import tempfile

    import pytest

    exe = shutil.which("espeak-ng")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("espeak-ng is not installed; .ci/run installs it (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "speech.wav")
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", out, text], check=True, capture_output=True)
        with open(out, "rb") as f:
            return f.read()
