"""Audio format detection and decoding to 16 kHz mono float32 with PyAV, once per request.

The format is decided by the file extension, then the Content-Type, then by sniffing the first
bytes, as the contract says; an unsupported extension is refused before any decoding.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import av
import numpy as np

from .errors import UndecodableAudio, UnsupportedAudio
from .threads import Cancelled
from .types import SAMPLE_RATE

log = logging.getLogger("rgpu.audio")

SUPPORTED_EXTENSIONS = ("mp3", "mp4", "mpeg", "mpga", "m4a", "wav", "webm")

_CONTENT_TYPES = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mpga": "mpga",
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/vnd.wave": "wav",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "video/mp4": "mp4",
    "video/mpeg": "mpeg",
    "audio/webm": "webm",
    "video/webm": "webm",
}


def sniff_format(head: bytes) -> str | None:
    """Recognise the supported containers from their magic bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    return None


def detect_format(filename: str | None, content_type: str | None, head: bytes) -> str:
    """Extension, then Content-Type, then magic bytes; raise 400 when none says audio we take."""
    suffix = Path(filename or "").suffix.lower().lstrip(".")
    if suffix:
        if suffix not in SUPPORTED_EXTENSIONS:
            raise UnsupportedAudio(
                f"unsupported file extension '.{suffix}'; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
            )
        return suffix
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _CONTENT_TYPES:
        return _CONTENT_TYPES[ctype]
    sniffed = sniff_format(head)
    if sniffed is None:
        raise UnsupportedAudio(
            "could not tell the audio format from the file name, Content-Type or content; "
            f"supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return sniffed


def read_head(path: Path, n: int = 64) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


class _Sink:
    """Collects decoded samples in memory, or in an unlinked temp file mapped back as read-only.

    The file-backed form keeps multi-hour recordings out of the process heap: the pages are
    page cache the kernel can drop, and the file is unlinked as soon as it is mapped, so it
    cannot leak even if the process dies.
    """

    def __init__(self, spool_dir: Path | None):
        self.count = 0
        self.pieces: list[np.ndarray] = []
        self.file = None
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)
            self.file = tempfile.NamedTemporaryFile(prefix="pcm-", dir=spool_dir, delete=False)

    def add(self, samples: np.ndarray) -> None:
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        self.count += len(samples)
        if self.file is not None:
            self.file.write(samples.tobytes())
        else:
            self.pieces.append(samples)

    def result(self) -> np.ndarray:
        if self.file is None:
            return np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)
        self.file.flush()
        try:
            if self.count == 0:
                return np.zeros(0, np.float32)
            return np.memmap(self.file.name, dtype=np.float32, mode="r", shape=(self.count,))
        finally:
            self.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file.name)
            self.file = None


def decode_file(
    path: Path,
    sample_rate: int = SAMPLE_RATE,
    spool_dir: Path | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Decode any audio stream PyAV understands to mono float32 at ``sample_rate``.

    With ``spool_dir`` the samples go to a file-backed map instead of the heap (long files).
    Corrupt packets are skipped (as ffmpeg does); a file with no decodable audio is a 422.
    Blocking: call it from a worker thread, never on the event loop.
    """
    bad_packets = 0
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise UndecodableAudio(f"could not decode audio: {exc}") from exc
    sink = _Sink(spool_dir)
    try:
        with container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise UndecodableAudio("could not decode audio: the file has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            try:
                for packet in container.demux(stream):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(f"decoding {path.name} was cancelled")
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        bad_packets += 1
                        continue
                    for frame in frames:
                        assert isinstance(frame, av.AudioFrame)  # demuxed from an audio stream
                        for out in resampler.resample(frame):
                            sink.add(out.to_ndarray())
                for out in resampler.resample(None):
                    sink.add(out.to_ndarray())
            except av.FFmpegError as exc:
                if not sink.count:
                    raise UndecodableAudio(f"could not decode audio: {exc}") from exc
                log.warning("audio stream ended with an error after %d samples: %s", sink.count, exc)
        if not sink.count:
            raise UndecodableAudio("could not decode audio: no audio samples found")
        if bad_packets:
            log.warning("skipped %d undecodable packets", bad_packets)
        return sink.result()
    finally:
        sink.close()


def load_audio(
    path: Path,
    filename: str | None = None,
    content_type: str | None = None,
    spool_dir: Path | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Validate the format (400) then decode (422). Blocking; stops at ``cancel``."""
    detect_format(filename, content_type, read_head(path))
    return decode_file(path, spool_dir=spool_dir, cancel=cancel)


def duration_s(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    return len(audio) / sample_rate
