"""The local mode's diarizer for speaker-attributed transcription: the diarizer engine in the same
process, fed the samples the transcriber already decoded (one decode per request; transcription
and diarization run at the same time, each on its own thread).

It goes through the diarizer predictor's readiness and admission, so a diarized transcription
counts against the diarizer's queue (``REFLECTOR_GPU_MAX_IN_FLIGHT`` / ``_MAX_QUEUED``) like a ``/diarize``
call, and a diarizer that failed to load answers 503 with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import rgpu_contract as contract
from rgpu_asr.diarization import AudioSource, Diarization, DiarizationFailed, ReferenceClip
from rgpu_asr.errors import CoreError
from rgpu_asr.speakers import SpeakerHints, SpeakerTurn
from rgpu_diarizer.pipeline import number_speakers
from rgpu_diarizer.predictor import DiarizerPredictor
from rgpu_serving.metrics import record_audio
from rgpu_serving.predictor import Predictor
from rgpu_serving.transcription import TranscriptionPredictor

log = logging.getLogger("rgpu.local")

#: Route label of the diarizer's audio-seconds metric for work done for a transcription.
ROUTE = "speaker-attribution"


class LocalDiarizer:
    """A ``rgpu_asr.diarization.Diarizer`` over the in-process diarizer predictor."""

    def __init__(self, predictor: DiarizerPredictor):
        self.predictor = predictor

    async def diarize(
        self, source: AudioSource, hints: SpeakerHints, references: Sequence[ReferenceClip]
    ) -> Diarization:
        p = self.predictor
        p.require_ready()
        engine = p.engine
        options = engine.options(**hints.as_params(), exclusive=True)
        async with p.admission.admit(contract.DIARIZE_PATH):
            try:
                if source.samples is not None:
                    result = await engine.diarize_samples(await source.samples(), options, references)
                elif source.path is not None:
                    result = await engine.diarize(
                        source.path, source.filename, source.content_type, options, references
                    )
                else:
                    raise DiarizationFailed("nothing to diarize: no samples and no file")
            except CoreError:
                raise
            except Exception as exc:  # a pipeline failure: the reason, never a transcript without speakers
                log.exception("diarization failed")
                raise DiarizationFailed(f"diarization failed: {type(exc).__name__}: {exc}") from exc
        record_audio(p.name, ROUTE, result.duration_s)
        rows, ids = number_speakers(result.turns)
        turns = [SpeakerTurn(r["start"], r["end"], r["speaker"]) for r in rows]
        return Diarization(turns, {ids[label]: name for label, name in result.names.items() if label in ids})


def connect(predictors: Sequence[Predictor]) -> None:
    """Give every transcriber without a configured diarizer service the in-process diarizer."""
    diarizers = [p for p in predictors if isinstance(p, DiarizerPredictor)]
    if not diarizers:
        return
    for p in predictors:
        if isinstance(p, TranscriptionPredictor) and p.diarizer is None:
            p.diarizer = LocalDiarizer(diarizers[0])
            log.info("%s: diarized transcription uses the in-process diarizer", p.name)
