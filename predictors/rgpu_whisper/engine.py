"""faster-whisper behind the shared transcription routes.

Chunks from concurrent requests (and the VAD chunks of long files) are concatenated and handed
to ``BatchedInferencePipeline`` as ``clip_timestamps``: one batched encoder/decoder pass for
up to ``batch_size`` chunks instead of one call per chunk.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rgpu_serving.errors import ApiError
from rgpu_serving.formats import ChunkTranscript, TextSegment
from rgpu_serving.timing import Word
from rgpu_serving.transcription import TranscriptionEngine

from .settings import WhisperSettings

log = logging.getLogger("rgpu.whisper")

SAMPLE_RATE = 16_000
_ALIGN = 160  # one Whisper frame (10 ms): clip offsets on frame boundaries map back exactly


class ModelUnavailable(RuntimeError):
    pass


def has_cuda() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # no CUDA runtime at all
        return False


def pick_device(device: str, compute_type: str) -> tuple[str, str]:
    """cuda/float16 when a GPU is present, cpu/int8 otherwise (each overridable)."""
    dev = device if device != "auto" else ("cuda" if has_cuda() else "cpu")
    ctype = compute_type if compute_type != "auto" else ("float16" if dev == "cuda" else "int8")
    return dev, ctype


def is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def resolve_model(model: str, model_dir: str | None) -> str:
    """A local CTranslate2 directory if one is named or mounted, else the hub name as given."""
    for candidate in (model, model_dir):
        if candidate and Path(candidate).is_dir():
            if not is_model_dir(Path(candidate)):
                raise ModelUnavailable(
                    f"{candidate} is not a CTranslate2 Whisper model directory (model.bin and config.json expected)"
                )
            return str(candidate)
    if model:
        if model.startswith(("/", "./", "../", "~")):
            raise ModelUnavailable(f"Whisper model directory {model} does not exist")
        return model
    raise ModelUnavailable(
        "no Whisper model configured: set REFLECTOR_GPU_WHISPER_MODEL to a model directory or hub name, "
        "or pass --model_dir (KServe mounts storageUri at /mnt/models)"
    )


class WhisperEngine(TranscriptionEngine):
    def __init__(self, settings: WhisperSettings, model_dir: str | None = None, fallback_model: str = ""):
        self.settings = settings
        self.model_dir = model_dir
        self.fallback_model = fallback_model
        self.max_batch = settings.batch_size
        self.max_wait_s = settings.max_batch_wait_ms / 1000
        self.model = None
        self.pipeline = None
        self.languages: tuple[str, ...] = ()
        self.multilingual = False

    def load(self) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        source = resolve_model(self.settings.model or self.fallback_model, self.model_dir)
        device, compute_type = pick_device(self.settings.device, self.settings.compute_type)
        log.info("loading Whisper %s on %s/%s", source, device, compute_type)
        try:
            self.model = WhisperModel(
                source,
                device=device,
                compute_type=compute_type,
                cpu_threads=self.settings.cpu_threads,
                download_root=self.settings.download_root,
            )
        except Exception as exc:
            if not Path(source).is_dir():
                raise ModelUnavailable(
                    f"could not load Whisper model '{source}' from the hub ({type(exc).__name__}: {exc}); "
                    "without network access, point REFLECTOR_GPU_WHISPER_MODEL or --model_dir at a local "
                    "CTranslate2 model directory"
                ) from exc
            raise
        self.pipeline = BatchedInferencePipeline(self.model)
        self.multilingual = self.model.model.is_multilingual
        self.languages = tuple(self.model.supported_languages)

    def resolve_language(self, language: str | None) -> str | None:
        if language is None or language == "auto":
            return None if self.multilingual else "en"
        code = language.lower()
        if not self.multilingual and code != "en":
            raise ApiError(400, f"this Whisper model only supports English; got language '{language}'")
        if self.languages and code not in self.languages:
            raise ApiError(400, f"unsupported language '{language}'; supported: {', '.join(self.languages)}")
        return code

    def transcribe_batch(self, language: str | None, chunks: list[np.ndarray]) -> list[ChunkTranscript]:
        assert self.pipeline is not None, "model not loaded"
        offsets, pieces, pos = [], [], 0
        for chunk in chunks:
            padded = np.pad(chunk, (0, (-len(chunk)) % _ALIGN))
            offsets.append(pos)
            pieces.append(padded)
            pos += len(padded)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        clips = [{"start": off / SAMPLE_RATE, "end": (off + len(p)) / SAMPLE_RATE} for off, p in zip(offsets, pieces)]
        segments, _info = self.pipeline.transcribe(
            audio,
            language=language,
            clip_timestamps=clips,
            batch_size=self.settings.batch_size,
            beam_size=self.settings.beam_size,
            word_timestamps=True,
        )
        starts = [off // _ALIGN for off in offsets]  # in Whisper frames, as Segment.seek is
        results = [ChunkTranscript([], []) for _ in chunks]
        for seg in segments:
            idx = starts.index(seg.seek) if seg.seek in starts else _owner(starts, seg.seek)
            base = offsets[idx] / SAMPLE_RATE
            results[idx].segments.append(
                TextSegment(
                    start=seg.start - base,
                    end=seg.end - base,
                    text=seg.text,
                    tokens=tuple(seg.tokens),
                    avg_logprob=float(seg.avg_logprob),
                    compression_ratio=float(seg.compression_ratio),
                    no_speech_prob=float(seg.no_speech_prob),
                    temperature=float(seg.temperature or 0.0),
                )
            )
            results[idx].words.extend(Word(w.word, w.start - base, w.end - base) for w in seg.words or ())
        return results


def _owner(starts: list[int], seek: int) -> int:
    """Index of the last chunk starting at or before ``seek``."""
    idx = 0
    for i, s in enumerate(starts):
        if s <= seek:
            idx = i
    return idx
