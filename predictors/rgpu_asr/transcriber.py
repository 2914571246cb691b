"""The transcription pipeline every route and engine shares.

Decoded audio -> chunks (the whole clip, or VAD chunks for long audio) -> the language, detected
per request from its first speech when the caller said ``auto`` -> chunks from every concurrent
request gathered into engine batches -> one ``Transcript`` in file time. HTTP shapes, offsets
and speakers are the caller's business; this module never sees a request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from .batching import DynamicBatcher
from .chunking import Chunk, VadParams, plan_chunks, whole_file_chunks
from .engine import Engine, Samples
from .timing import finalize_words, place_chunk_words
from .types import SAMPLE_RATE, ChunkTranscript, TextSegment, Transcript, Word
from .vad import SileroVad, default_vad

#: Batcher key of language detection (transcription keys are ``(mode, language, prompt)``).
_DETECT = ("detect", None)


@dataclass(frozen=True)
class Job:
    """One request's decoded audio and the chunks planned for it."""

    audio: Samples
    chunks: list[Chunk]
    #: The chunks come from the VAD, so each ends where its speech ends.
    speech_chunks: bool = False

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def first_speech(self) -> Samples:
        """What language detection listens to: the first chunk (first speech, at most one chunk)."""
        return self.chunks[0].audio(self.audio)


def plan(
    audio: Samples,
    max_chunk_s: float,
    min_chunk_s: float,
    vad: Callable[[], SileroVad] = default_vad,
    vad_params: VadParams | None = None,
) -> Job:
    """Blocking: a clip that fits one chunk is taken whole; longer audio goes through the VAD.
    With ``vad_params`` (a caller's ``server_vad`` chunking) every clip goes through the VAD
    with those parameters."""
    if vad_params is None and len(audio) <= max_chunk_s * SAMPLE_RATE:
        return Job(audio, whole_file_chunks(len(audio), max_chunk_s, min_chunk_s))
    return Job(audio, plan_chunks(vad().segments(audio, vad_params), max_chunk_s, min_chunk_s), speech_chunks=True)


#: Speech at the end of a VAD chunk this long after its last word was dropped by the decoder.
DROPPED_TAIL_S = 1.5


def dropped_tails(
    chunks: Sequence[Chunk], results: Sequence[ChunkTranscript], min_chunk_s: float
) -> list[tuple[int, Chunk]]:
    """VAD chunks whose words stop well before their speech does, and the rest of each to decode
    again (pure). Batched Whisper sometimes ends a chunk after its first sentences (an early
    end-of-text with no timestamps to resume from); the sequential decoder would have gone on
    from its last timestamp, which is what this does once."""
    tails = []
    for i, (chunk, result) in enumerate(zip(chunks, results, strict=True)):
        last = max((w.end for w in result.words), default=0.0)
        if chunk.duration_s() - last >= DROPPED_TAIL_S:
            start = chunk.start + int(last * SAMPLE_RATE)
            tails.append((i, Chunk(start, chunk.end, max(0, int(min_chunk_s * SAMPLE_RATE) - (chunk.end - start)))))
    return tails


def assemble(
    chunks: Sequence[Chunk], results: Sequence[ChunkTranscript], language: str, duration_s: float
) -> Transcript:
    """Chunk transcripts -> one transcript in file time (pure)."""
    words: list[Word] = []
    segments: list[TextSegment] = []
    for chunk, result in zip(chunks, results, strict=True):
        offset, length = chunk.offset_s(), chunk.duration_s()
        words += place_chunk_words(result.words, offset, length)
        segments += [s.shifted(offset, length) for s in result.segments]
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    return Transcript(text, finalize_words(words), segments, language, duration_s)


class Transcriber:
    """One engine behind a dynamic batcher: what every transcription route calls."""

    def __init__(
        self,
        engine: Engine,
        name: str = "asr",
        on_batch: Callable[[int], None] | None = None,
        vad: Callable[[], SileroVad] = default_vad,
    ):
        self.engine = engine
        self.vad = vad
        limits = engine.limits
        self.batcher: DynamicBatcher[Samples, ChunkTranscript | str] = DynamicBatcher(
            self._run, max_batch=limits.max_batch, max_wait_s=limits.max_wait_s, name=name, on_batch=on_batch
        )

    def load(self) -> None:
        self.engine.load()
        self.vad()  # load the VAD once at start, not on the first long file

    def resolve_language(self, language: str | None) -> str | None:
        """The caller's language checked by the engine (``None``: detect per request)."""
        return self.engine.resolve_language((language or "").strip() or None)

    def plan(self, audio: Samples, vad_params: VadParams | None = None) -> Job:
        """Blocking (VAD on long audio): run it in a worker thread."""
        limits = self.engine.limits
        return plan(audio, limits.max_chunk_s, limits.min_chunk_s, self.vad, vad_params)

    def _run(self, key: Hashable, items: list[Samples]) -> Sequence[ChunkTranscript | str]:
        if key == _DETECT:
            return self.engine.detect_language(items)
        assert isinstance(key, tuple)
        mode, language, prompt = key
        return self.engine.transcribe_batch(
            language, items, draft=mode == "draft", prompt=prompt, live=mode in ("draft", "live")
        )

    async def detect(self, job: Job) -> str | None:
        """The language of ``job``'s first speech, or None when the engine cannot tell."""
        if not self.engine.detects_language or not job.chunks:
            return None
        (found,) = await self.batcher.submit([job.first_speech()], key=_DETECT)
        assert isinstance(found, str)
        return found

    async def transcribe(
        self,
        job: Job,
        language: str | None,
        first: bool = False,
        draft: bool = False,
        prompt: str | None = None,
        live: bool = False,
    ) -> Transcript:
        """``language`` as :meth:`resolve_language` gave it; ``None`` detects it for this job.
        ``first``: ahead of queued work (a live turn's final decode before partial ones);
        ``draft``: the engine's cheaper decode (partial text, always ``live``), batched apart
        from full ones; ``prompt``: the text before this audio (batched only with work of the
        same prompt, when the engine takes one); ``live``: a realtime turn, decoded for latency
        (see ``Engine.transcribe_batch``) and batched apart from files and clips."""
        if language is None:
            language = await self.detect(job)
        pieces = [c.audio(job.audio) for c in job.chunks]
        mode = "draft" if draft else "live" if live else "transcribe"
        key = (mode, language, (prompt or None) if self.engine.takes_prompt else None)
        results = await self.batcher.submit(pieces, key=key, first=first)
        done = [r for r in results if isinstance(r, ChunkTranscript)]
        chunks = list(job.chunks)
        tails = dropped_tails(chunks, done, self.engine.limits.min_chunk_s) if job.speech_chunks and not draft else []
        if tails:
            again = await self.batcher.submit([t.audio(job.audio) for _, t in tails], key=key, first=first)
            for (i, tail), result in reversed(list(zip(tails, again, strict=True))):
                assert isinstance(result, ChunkTranscript)
                chunks.insert(i + 1, tail)
                done.insert(i + 1, result)
        return assemble(chunks, done, language or "", job.duration_s)

    def close(self) -> None:
        self.batcher.close()
