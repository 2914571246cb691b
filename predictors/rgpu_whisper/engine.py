"""faster-whisper (CTranslate2) as an ``rgpu_asr`` engine.

Chunks from concurrent requests (and the VAD chunks of long files) are concatenated and handed
to ``BatchedInferencePipeline`` as ``clip_timestamps``: one batched encoder/decoder pass for
up to ``batch_size`` chunks instead of one call per chunk. Language detection is batched too:
the first speech of several requests goes through one encoder pass.

Live decodes (realtime turns and their drafts) of short chunks are encoded in a window of their
own length plus a margin rather than Whisper's fixed 30 s: the encoder is most of the cost of a
short clip on a CPU, and it scales with the window. Files and clips keep the 30 s window, whose
text is Whisper's own (the short one costs ~0.7 WER points on isolated turns).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rgpu_asr.engine import EngineLimits, Samples
from rgpu_asr.errors import InvalidInput
from rgpu_asr.models import ModelChoice, ModelFamily, hub_unavailable, resolve_model
from rgpu_asr.repeats import repeated_tail
from rgpu_asr.types import SAMPLE_RATE, ChunkTranscript, TextSegment, Word

from .settings import WhisperSettings

log = logging.getLogger("rgpu.whisper")

_ALIGN = 160  # one Whisper frame (10 ms): clip offsets on frame boundaries map back exactly
_FRAMES_PER_S = SAMPLE_RATE // _ALIGN
_MAX_FRAMES = 30 * _FRAMES_PER_S  # Whisper's window (its encoder's 1500 positions, 2 frames each)
#: Tokens a draft may generate per second of audio, and on top (speech is 3-5 tokens a second;
#: a draft that loops stops there instead of running to Whisper's 448).
_DRAFT_TOKENS_PER_S = 8
_DRAFT_TOKENS_MIN = 8


def window_frames(durations: Sequence[float], padding_s: float) -> int:
    """Encoder frames for a batch: the longest chunk plus ``padding_s`` in whole seconds, at most
    Whisper's 30 s; ``padding_s`` 0 keeps the 30 s window. Whisper was trained on 30 s windows:
    with under ~2 s of room after the speech its decoder starts to repeat itself."""
    if padding_s <= 0 or not durations:
        return _MAX_FRAMES
    return min(_MAX_FRAMES, math.ceil(max(durations) + padding_s) * _FRAMES_PER_S)


def draft_token_cap(longest_s: float) -> int:
    """Half of Whisper's 448 at most: the other half is the prompt's (faster-whisper keeps its
    last 223 tokens)."""
    return min(224, math.ceil(longest_s * _DRAFT_TOKENS_PER_S) + _DRAFT_TOKENS_MIN)


def _ctranslate2_dir(path: Path) -> Path | None:
    return path if (path / "model.bin").is_file() and (path / "config.json").is_file() else None


FAMILY = ModelFamily(
    name="Whisper",
    env="REFLECTOR_GPU_WHISPER_MODEL",
    expected="a CTranslate2 Whisper model directory (model.bin and config.json)",
    accepts=_ctranslate2_dir,
)


def has_cuda() -> bool:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count()) > 0
    except Exception:  # no CUDA runtime at all
        return False


def pick_device(device: str, compute_type: str) -> tuple[str, str]:
    """cuda/float16 when a GPU is present, cpu/int8 otherwise (each overridable)."""
    dev = device if device != "auto" else ("cuda" if has_cuda() else "cpu")
    ctype = compute_type if compute_type != "auto" else ("float16" if dev == "cuda" else "int8")
    return dev, ctype


class WhisperEngine:
    detects_language = False  # until a multilingual model is loaded
    takes_prompt = True  # initial_prompt

    def __init__(
        self,
        settings: WhisperSettings,
        model_dir: str | None = None,
        packaged: Callable[[], Path] | None = None,
    ):
        self.settings = settings
        self.model_dir = model_dir
        self.packaged = packaged
        self.limits = EngineLimits(max_batch=settings.batch_size, max_wait_s=settings.max_batch_wait_ms / 1000)
        self.model: Any = None
        self.live_pipeline: Any = None  # short live chunks in a short encoder window
        self.pipeline: Any = None  # every chunk in Whisper's 30 s window
        self.choice: ModelChoice | None = None
        self.languages: tuple[str, ...] = ()

    def load(self) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        choice = resolve_model(FAMILY, self.settings.model, model_dir=self.model_dir, packaged=self.packaged)
        device, compute_type = pick_device(self.settings.device, self.settings.compute_type)
        log.info("loading Whisper %s (from %s) on %s/%s", choice.source, choice.origin, device, compute_type)
        try:
            self.model = WhisperModel(
                choice.source,
                device=device,
                compute_type=compute_type,
                cpu_threads=self.settings.cpu_threads,
                download_root=self.settings.download_root,
            )
        except Exception as exc:
            if not choice.local:
                raise hub_unavailable(FAMILY, choice, exc) from exc
            raise
        self.choice = choice
        windowed = _windowed_pipeline(BatchedInferencePipeline)
        self.live_pipeline = windowed(self.model, self.settings.window_padding_s)
        self.pipeline = windowed(self.model, 0.0)
        self.detects_language = bool(self.model.model.is_multilingual)
        self.languages = tuple(self.model.supported_languages)

    def resolve_language(self, language: str | None) -> str | None:
        if language is None or language.lower() == "auto":
            return None if self.detects_language else "en"
        code = language.lower()
        if not self.detects_language and code != "en":
            raise InvalidInput(f"this Whisper model only supports English; got language '{language}'")
        if self.languages and code not in self.languages:
            raise InvalidInput(f"unsupported language '{language}'; supported: {', '.join(self.languages)}")
        return code

    def detect_language(self, clips: Sequence[Samples]) -> list[str]:
        """One encoder pass over the first 30 s of every clip; the most likely language each."""
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        features = np.stack([pad_or_trim(extractor(clip[: extractor.n_samples])) for clip in clips])
        encoded = self.model.encode(features)
        return [str(found[0][0])[2:-2] for found in self.model.model.detect_language(encoded)]

    def transcribe_batch(
        self,
        language: str | None,
        chunks: Sequence[Samples],
        draft: bool = False,
        prompt: str | None = None,
        live: bool = False,
    ) -> list[ChunkTranscript]:
        """``draft`` (a live turn's partial text): greedy, without the word-alignment pass, at most
        :func:`draft_token_cap` tokens; its words are the segment text's, timed with their segment.
        ``prompt``: Whisper's previous-text prompt (``initial_prompt``), as when it conditions a
        window on the text of the one before. ``live`` or ``draft``: the short encoder window."""
        assert self.pipeline is not None, "model not loaded"
        live = live or draft
        results = self._decode(self.live_pipeline if live else self.pipeline, language, chunks, draft, prompt)
        if draft:
            return results  # superseded by the turn's full decode: no second chances
        longest = max((len(c) for c in chunks), default=0) / SAMPLE_RATE
        if live and window_frames([longest], self.settings.window_padding_s) < _MAX_FRAMES:
            # A short window's decoder may say the speech again; such chunks get the 30 s one.
            looped = [i for i, r in enumerate(results) if _repeats_itself(r)]
            if looped:
                log.info("decoding %d chunk(s) again in a 30 s window: their text repeated itself", len(looped))
                again = self._decode(self.pipeline, language, [chunks[i] for i in looped], draft, prompt)
                for i, result in zip(looped, again, strict=True):
                    results[i] = result
        threshold = self.settings.compression_ratio_threshold
        for idx, result in enumerate(results):
            if threshold > 0 and any(s.compression_ratio > threshold for s in result.segments):
                results[idx] = self._redecode(language, chunks[idx], prompt)
        return results

    def _decode(
        self, pipeline: Any, language: str | None, chunks: Sequence[Samples], draft: bool, prompt: str | None
    ) -> list[ChunkTranscript]:
        """One batched pipeline call for the chunks (concatenated, passed as clip timestamps)."""
        offsets, pieces, pos = [], [], 0
        for chunk in chunks:
            padded = np.pad(chunk, (0, (-len(chunk)) % _ALIGN))
            offsets.append(pos)
            pieces.append(padded)
            pos += len(padded)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        clips = [
            {"start": off / SAMPLE_RATE, "end": (off + len(p)) / SAMPLE_RATE}
            for off, p in zip(offsets, pieces, strict=True)
        ]
        longest = max((len(p) for p in pieces), default=0) / SAMPLE_RATE
        segments, _info = pipeline.transcribe(
            audio,
            language=language,
            clip_timestamps=clips,
            batch_size=self.settings.batch_size,
            beam_size=1 if draft else self.settings.beam_size,
            word_timestamps=not draft,
            max_new_tokens=draft_token_cap(longest) if draft else None,
            initial_prompt=prompt or None,
        )
        starts = [off // _ALIGN for off in offsets]  # in Whisper frames, as Segment.seek is
        results: list[ChunkTranscript] = [ChunkTranscript([], []) for _ in chunks]
        for seg in segments:
            idx = _owner(starts, seg.seek)
            _append(results[idx], seg, offsets[idx] / SAMPLE_RATE, draft)
        return results

    def _redecode(self, language: str | None, chunk: Samples, prompt: str | None = None) -> ChunkTranscript:
        """A chunk whose text repeats itself (compression ratio above the threshold: the decoder
        looped) decoded again on its own by faster-whisper's sequential path, which raises the
        temperature until the text stops repeating, as openai-whisper does. The batched pipeline
        has no such fallback; loops are rare, so this costs nothing on ordinary speech."""
        segments, _info = self.model.transcribe(
            np.asarray(chunk, dtype=np.float32),
            language=language,
            beam_size=self.settings.beam_size,
            word_timestamps=True,
            temperature=_FALLBACK_TEMPERATURES,
            compression_ratio_threshold=self.settings.compression_ratio_threshold,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            vad_filter=False,
        )
        log.info(
            "re-decoded a chunk whose text repeated (compression ratio above %s)",
            self.settings.compression_ratio_threshold,
        )
        out = ChunkTranscript([], [])
        for seg in segments:
            _append(out, seg, 0.0)
        return out


#: openai-whisper's and faster-whisper's default temperature schedule.
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _append(result: ChunkTranscript, seg: Any, base: float, draft: bool = False) -> None:
    """One faster-whisper segment (and its words), moved to its chunk's time base; a draft has no
    word timings: its words are the segment text's, timed with their segment."""
    result.segments.append(
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
    if draft:
        start, end = seg.start - base, seg.end - base
        result.words.extend(Word(w, start, end) for w in re.findall(r"\s*\S+", seg.text))
    else:
        result.words.extend(Word(w.word, w.start - base, w.end - base) for w in seg.words or ())


def _repeats_itself(result: ChunkTranscript) -> bool:
    """The chunk's words end by saying three or more of them again."""
    words = [w.word for w in result.words]
    return repeated_tail(words, min_period=3) < len(words)


def _windowed_pipeline(base: type[Any]) -> type[Any]:
    """faster-whisper's batched pipeline with the encoder window cut to :func:`window_frames`.

    ``BatchedInferencePipeline.transcribe`` pads every chunk's features to 3000 frames
    (``pad_or_trim``) and hands them to ``_batched_segments_generator``; cutting them there
    leaves the chunks' own frames as they were (the padding is appended), and everything
    downstream sizes itself from the chunk's duration (``forward``: ``segment_size`` for the
    timestamp split and the word alignment's ``num_frames``), which the window always covers.
    CTranslate2 takes fewer than 3000 frames since OpenNMT/CTranslate2#1433. Written against
    faster-whisper 1.2.1 (pinned)."""

    class WindowedPipeline(base):
        def __init__(self, model: Any, padding_s: float):
            super().__init__(model)
            self.padding_s = padding_s

        def _batched_segments_generator(
            self, features: Any, tokenizer: Any, chunks_metadata: list[dict[str, Any]], *args: Any
        ) -> Any:
            if len(features):
                frames = window_frames([m["duration"] for m in chunks_metadata], self.padding_s)
                features = features[..., :frames]
            return super()._batched_segments_generator(features, tokenizer, chunks_metadata, *args)

    return WindowedPipeline


def _owner(starts: list[int], seek: int) -> int:
    """Index of the last chunk starting at or before ``seek``."""
    idx = 0
    for i, s in enumerate(starts):
        if s <= seek:
            idx = i
    return idx
