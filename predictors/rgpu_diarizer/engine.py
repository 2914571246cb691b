"""The diarizer engine: who spoke when, one recording at a time per device.

One diarization runs at a time per device, on a dedicated thread: pyannote already uses the whole
GPU (or every CPU core) for one recording, so running two at once only makes both slower and
doubles the memory. A waiting request holds only its file on disk: it is decoded once its turn
comes, so at most one recording is in memory at a time, and ``max_duration_s`` bounds how big
that is. Speaker-count hints are validated here, once, for every route that takes them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from rgpu_asr import audio as audio_io
from rgpu_asr.diarization import ReferenceClip
from rgpu_asr.engine import Samples
from rgpu_asr.errors import InvalidInput, TooLarge
from rgpu_asr.models import resolve_model
from rgpu_asr.speakers import SPEAKER_LIMIT, SpeakerHints, cosine_similarities, match_references

from .pipeline import FAMILY, Turn, embed_clips, load_pipeline, run
from .settings import DiarizerSettings

log = logging.getLogger("rgpu.diarizer")


@dataclass(frozen=True)
class DiarizeOptions:
    timestamp: float = 0.0
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    exclusive: bool = False

    @classmethod
    def build(
        cls,
        timestamp: Any = None,
        num_speakers: Any = None,
        min_speakers: Any = None,
        max_speakers: Any = None,
        exclusive: Any = None,
        speaker_limit: int = SPEAKER_LIMIT,
    ) -> DiarizeOptions:
        """Validated options, or ``InvalidInput`` naming the field (before any fetch or decode)."""
        ts = 0.0 if timestamp is None else timestamp
        try:
            ts = float(ts)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"timestamp must be a number of seconds, got {timestamp!r}") from exc
        if not math.isfinite(ts) or ts < 0:
            raise InvalidInput(f"timestamp must be a finite number of seconds >= 0, got {timestamp!r}")
        hints = SpeakerHints.build(num_speakers, min_speakers, max_speakers, speaker_limit)
        return cls(ts, hints.num_speakers, hints.min_speakers, hints.max_speakers, bool(exclusive))

    @property
    def hints(self) -> SpeakerHints:
        return SpeakerHints(self.num_speakers, self.min_speakers, self.max_speakers)


def probe_duration_s(path: Path) -> float | None:
    """The recording's duration from its container header, without decoding (None if unknown)."""
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration:
                return float(container.duration) / 1_000_000
    except Exception:  # undecodable: decode_file reports it properly (422)
        return None
    return None


@dataclass(frozen=True)
class Diarization:
    turns: list[Turn]
    duration_s: float
    #: pyannote's speaker label -> the known speaker (reference clip) it matched.
    names: dict[Any, str] = field(default_factory=dict)


class DiarizerEngine:
    def __init__(
        self,
        settings: DiarizerSettings,
        model_dir: str | None = None,
        packaged: Callable[[], Path] | None = None,
        name: str = "diarizer",
    ):
        self.settings = settings
        self.model_dir = model_dir
        #: The local mode's packaged pipeline, used when nothing is configured.
        self.packaged = packaged
        self.pipeline: Any = None
        self._device_slot = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-diarize")

    def load(self) -> None:
        s = self.settings
        choice = resolve_model(FAMILY, s.model, model_dir=self.model_dir, packaged=self.packaged)
        if s.cpu_threads > 0:
            import torch

            torch.set_num_threads(s.cpu_threads)
        self.pipeline = load_pipeline(
            choice,
            token=s.hf_token,
            cache_dir=s.cache_dir,
            device=s.device,
            segmentation_batch_size=s.segmentation_batch_size,
            embedding_batch_size=s.embedding_batch_size,
        )

    def options(self, **hints: Any) -> DiarizeOptions:
        return DiarizeOptions.build(**hints, speaker_limit=self.settings.speaker_limit)

    def _check_duration(self, seconds: float | None) -> None:
        limit = self.settings.max_duration_s
        if seconds is not None and limit > 0 and seconds > limit:
            raise TooLarge(f"the recording is {seconds:.0f} s long, over the {limit:.0f} s limit")

    def _diarize_audio(
        self, audio: Samples, options: DiarizeOptions, references: Sequence[ReferenceClip]
    ) -> Diarization:
        """Blocking, on the device thread: diarize decoded audio; match the references."""
        duration = audio_io.duration_s(audio)
        self._check_duration(duration)
        assert self.pipeline is not None, "model not loaded"
        result = run(
            self.pipeline, audio, options.num_speakers, options.min_speakers, options.max_speakers, options.exclusive
        )
        names = self._match(result.embeddings, result.turns, references) if references else {}
        return Diarization(result.turns, duration, names)

    def _match(self, embeddings: dict[Any, np.ndarray], turns: list[Turn], references: Sequence[ReferenceClip]) -> dict:
        """pyannote label -> reference name, for the speakers a reference matched (one to one,
        cosine similarity of the reference's embedding and the speaker's centroid at least
        ``speaker_match_threshold``)."""
        labels = [label for label in dict.fromkeys(t.speaker for t in turns) if label in embeddings]
        if not labels:
            return {}
        refs = embed_clips(self.pipeline, [r.samples for r in references])
        sims = cosine_similarities(refs, np.stack([embeddings[label] for label in labels]))
        matched = match_references(sims, self.settings.speaker_match_threshold)
        log.debug("known-speaker similarities %s; matched %s", np.round(sims, 3).tolist(), matched)
        return {labels[col]: references[row].name for col, row in matched.items()}

    def _diarize_file(self, path: Path, options: DiarizeOptions, references: Sequence[ReferenceClip]) -> Diarization:
        """Blocking, on the device thread: decode, then diarize."""
        self._check_duration(probe_duration_s(path))
        return self._diarize_audio(audio_io.decode_file(path), options, references)

    async def diarize(
        self,
        path: Path,
        filename: str | None,
        content_type: str | None,
        options: DiarizeOptions,
        references: Sequence[ReferenceClip] = (),
    ) -> Diarization:
        """Refuse what is not audio (400) before queueing, then wait for the device."""
        head = await asyncio.to_thread(audio_io.read_head, path)
        audio_io.detect_format(filename, content_type, head)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._device_slot, self._diarize_file, path, options, references)

    async def diarize_samples(
        self, audio: Samples, options: DiarizeOptions, references: Sequence[ReferenceClip] = ()
    ) -> Diarization:
        """Audio another component already decoded (the local mode's transcriber: one decode)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._device_slot, self._diarize_audio, audio, options, references)
