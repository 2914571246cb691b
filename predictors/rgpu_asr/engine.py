"""The ``Engine`` protocol: what a speech model must do to serve every transcription route.

Whisper (faster-whisper) and Parakeet (NeMo) implement it; the transcriber, the HTTP edge and
later additions (speaker-attributed output, realtime streams) only ever talk to this protocol,
so a client switches engines by URL and a new engine touches no other code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .types import ChunkTranscript

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EngineLimits:
    """How the transcriber plans and batches work for an engine."""

    #: Longest chunk the model takes in one piece (longer audio is VAD-chunked).
    max_chunk_s: float = 30.0
    #: Shortest chunk it accepts (shorter chunks get silence appended).
    min_chunk_s: float = 0.5
    #: Chunks per model call.
    max_batch: int = 8
    #: Seconds a partial batch waits for more work from concurrent requests.
    max_wait_s: float = 0.01


class Engine(Protocol):
    """A speech model behind the shared transcription pipeline. Every method but ``load`` and
    ``resolve_language`` runs on the single inference thread, one batch at a time."""

    limits: EngineLimits
    #: Whether ``detect_language`` works (Whisper multilingual); otherwise 'auto' keeps the
    #: model's own behaviour and the transcript's language is what ``resolve_language`` said.
    detects_language: bool
    #: Whether ``transcribe_batch`` conditions on ``prompt`` (Whisper); the transcriber batches
    #: chunks of different prompts together for engines that do not.
    takes_prompt: bool

    def load(self) -> None:
        """Load weights; raise ``ModelUnavailable`` with a message a user can act on."""

    def resolve_language(self, language: str | None) -> str | None:
        """The language to decode with; ``None`` means detect it per request. ``None`` or
        ``'auto'`` in, or ``InvalidInput`` when the model cannot do the language asked for."""

    def detect_language(self, clips: Sequence[Samples]) -> list[str]:
        """Blocking: one language code per clip (the first speech of each request), batched."""

    def transcribe_batch(
        self,
        language: str | None,
        chunks: Sequence[Samples],
        draft: bool = False,
        prompt: str | None = None,
        live: bool = False,
    ) -> list[ChunkTranscript]:
        """Blocking: one model call for several chunks; times relative to each chunk. ``draft``:
        a cheaper decode whose words may lack exact times (a live turn's partial text).
        ``prompt``: text said before the chunks (a live session's earlier turns), for engines
        that condition on it (Whisper); others ignore it. ``live``: someone waits on the text
        as it is spoken, so the engine may give up a little accuracy for latency (Whisper's
        short encoder window); files and clips (``live`` false) get the model's own decode."""
