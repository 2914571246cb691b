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
