"""NVIDIA NeMo Parakeet (FastConformer-TDT) behind the shared transcription routes.

The core plans the chunks (whole clips, or VAD chunks of at most ``max_chunk_s`` for long audio,
anything under 0.5 s padded with silence) and its dynamic batcher gathers chunks from concurrent
requests and from one long file; each gathered batch is ONE ``model.transcribe(..., timestamps=True)``
call, NeMo's own batched inference, on a single inference thread (NeMo's ``transcribe`` toggles
model state and is not re-entrant). Word timestamps come from TDT greedy decoding.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rgpu_asr.engine import EngineLimits, Samples
from rgpu_asr.errors import InvalidInput, ModelUnavailable
from rgpu_asr.models import ModelChoice, ModelFamily, hub_unavailable, resolve_model
from rgpu_asr.torchaudio_compat import import_torchaudio
from rgpu_asr.types import SAMPLE_RATE, ChunkTranscript, TextSegment, Word

from .settings import ParakeetSettings

log = logging.getLogger("rgpu.parakeet")

DEFAULT_HUB_MODEL = "nvidia/parakeet-tdt-0.6b-v2"

#: parakeet-tdt-0.6b-v3: the 25 European languages of its model card (it detects the language itself).
V3_LANGUAGES = (
    "bg",
    "hr",
    "cs",
    "da",
    "nl",
    "en",
    "et",
    "fi",
    "fr",
    "de",
    "el",
    "hu",
    "it",
    "lv",
    "lt",
    "mt",
    "pl",
    "pt",
    "ro",
    "sk",
    "sl",
    "es",
    "sv",
    "ru",
    "uk",
)
#: Known model names (matched in the hub name or the .nemo file/directory name) -> languages.
KNOWN_MODELS: dict[str, tuple[str, ...]] = {
    "parakeet-tdt-0.6b-v3": V3_LANGUAGES,
    "parakeet-tdt-0.6b-v2": ("en",),
}

#: Loggers of NeMo and the libraries it drags in that chatter on every call.
_CHATTY_LOGGERS = (
    "nemo_logger",
    "nemo",
    "nv_one_logger",
    "lightning",
    "pytorch_lightning",
    "lightning.pytorch",
    "lightning_fabric",
    "lhotse",
    "numba",
    "torch.distributed",
)


def languages_for(source: str, configured: str = "") -> tuple[str, ...]:
    """Languages a model accepts: configured, else by known model name, else English only."""
    if configured.strip():
        return tuple(dict.fromkeys(c.strip().lower() for c in configured.split(",") if c.strip()))
    name = source.lower()
    for known, langs in KNOWN_MODELS.items():
        if known in name:
            return langs
    return ("en",)


def find_nemo_file(candidate: Path) -> Path | None:
    """The ``.nemo`` file named, or the single one inside a directory (KServe ``/mnt/models``)."""
    if candidate.is_file():
        return candidate if candidate.suffix == ".nemo" else None
    found = sorted(candidate.glob("*.nemo")) or sorted(candidate.glob("*/*.nemo"))
    if len(found) > 1:
        log.warning("several .nemo files in %s; using %s", candidate, found[0])
    return found[0] if found else None


FAMILY = ModelFamily(
    name="Parakeet",
    env="REFLECTOR_GPU_PARAKEET_MODEL",
    expected="a .nemo file, or a directory holding one (e.g. parakeet-tdt-0.6b-v2.nemo)",
    accepts=find_nemo_file,
)


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str, device: str):
    """Autocast precision on GPU (bf16 where supported, else fp16); None means float32."""
    import torch

    if not device.startswith("cuda") or dtype == "float32":
        return None
    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype in ("float16", "bfloat16"):
        return getattr(torch, dtype)
    raise ModelUnavailable(f"REFLECTOR_GPU_PARAKEET_DTYPE must be auto, float32, float16 or bfloat16; got '{dtype}'")


def quiet_nemo(level: str = "ERROR") -> None:
    """Route NeMo's logging through the service's handlers at ``level``; no stdout/stderr swapping.

    NeMo's logger prints through its own stdout/stderr stream handlers and buffers every record
    in unbounded in-memory handlers (meant to be flushed to a log file it never gets here):
    both are removed, and the logger propagates to the root logger (JSON logs) instead.
    """
    lvl = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(lvl, int):
        lvl = logging.ERROR
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(lvl, logging.WARNING) if name != "nemo_logger" else lvl)
    # NeMo's ASR collection imports torchaudio at module level; make that import survive a
    # CUDA torchaudio next to CPU torch (installed here by the diarizer's extra).
    import_torchaudio()
    try:
        from nemo.utils import logging as nemo_logging
    except Exception:  # pragma: no cover - NeMo absent: load() reports it
        return
    nemo_logging.set_verbosity(lvl)
    logger = logging.getLogger("nemo_logger")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    with contextlib.suppress(Exception):
        nemo_logging._handlers.clear()
    logger.propagate = True
    if lvl >= logging.ERROR:
        # NeMo re-routes Python warnings into its logger; keep its import/config warnings out of the log.
        with contextlib.suppress(Exception):
            nemo_logging.captureWarnings(False)
        for module in ("nemo", "lightning", "pytorch_lightning", "lhotse", "megatron", "torch.nn.modules.rnn"):
            warnings.filterwarnings("ignore", module=rf"{re.escape(module)}(\..*)?$")


class ParakeetEngine:
    #: Parakeet v3 finds the language itself but does not report it; v2 is English only.
    detects_language = False
    takes_prompt = False  # a transducer: no text context to condition on

    def __init__(self, settings: ParakeetSettings, model_dir: str | None = None, hub_default: str = ""):
        self.settings = settings
        self.model_dir = model_dir
        self.hub_default = hub_default
        profile = settings.resolved
        self.profile = settings.profile
        # NeMo fails on input under 0.5 s: the transcriber pads shorter chunks with silence.
        self.limits = EngineLimits(
            max_chunk_s=profile.max_chunk_s,
            min_chunk_s=0.5,
            max_batch=profile.batch_size,
            max_wait_s=profile.max_batch_wait_ms / 1000,
        )
        self.choice: ModelChoice | None = None
        self.model: Any = None
        self.source = ""
        self.device = "cpu"
        self.autocast_dtype = None
        self.languages: tuple[str, ...] = ("en",)
        self._lock = threading.Lock()

    # ---- model -------------------------------------------------------------------------
    def load(self) -> None:
        quiet_nemo(self.settings.nemo_log_level)
        choice = resolve_model(FAMILY, self.settings.model, model_dir=self.model_dir, hub_default=self.hub_default)
        source, local = choice.source, choice.local
        try:
            import torch
            from nemo.collections.asr.models import ASRModel
        except ImportError as exc:
            raise ModelUnavailable(
                f"NeMo is not installed ({exc}); install the predictor with: pip install 'reflector-gpu[parakeet]'"
            ) from exc
        quiet_nemo(self.settings.nemo_log_level)  # NeMo's logger exists now
        if self.settings.cpu_threads > 0:
            torch.set_num_threads(self.settings.cpu_threads)
        device = pick_device(self.settings.device)
        self.autocast_dtype = pick_dtype(self.settings.dtype, device)
        log.info(
            "loading Parakeet %s on %s (%s), profile %s", source, device, self.autocast_dtype or "float32", self.profile
        )
        try:
            if local:
                model = ASRModel.restore_from(source, map_location=torch.device(device))
            else:
                model = ASRModel.from_pretrained(source, map_location=torch.device(device))
        except Exception as exc:
            if not local:
                raise hub_unavailable(FAMILY, choice, exc) from exc
            raise ModelUnavailable(f"could not load NeMo model {source}: {type(exc).__name__}: {exc}") from exc
        model.eval()
        self._enable_timestamps(model)
        self.model = model
        self.device = device
        self.choice = choice
        self.source = source
        self.languages = languages_for(source, self.settings.languages)
        quiet_nemo(self.settings.nemo_log_level)
        self.transcribe_batch("en", [np.zeros(SAMPLE_RATE, dtype=np.float32)])  # warm up (and fail early)

    @staticmethod
    def _enable_timestamps(model) -> None:
        """Switch decoding to timestamps once, so ``transcribe`` does not rebuild it per call."""
        from omegaconf import open_dict

        cfg = model.cfg.decoding
        if cfg.get("compute_timestamps", None) is not True:
            with open_dict(cfg):
                cfg.compute_timestamps = True
            model.change_decoding_strategy(cfg, verbose=False)

    # ---- languages ---------------------------------------------------------------------
    def resolve_language(self, language: str | None) -> str | None:
        if language is None or language.lower() == "auto":
            return "en" if self.languages == ("en",) else None
        code = language.strip().lower()
        if self.languages == ("en",) and code != "en":
            raise InvalidInput(f"this Parakeet model only supports English; got language '{language}'")
        if code not in self.languages:
            raise InvalidInput(
                f"unsupported language '{language}' for this Parakeet model; supported: {', '.join(self.languages)}",
            )
        return code

    # ---- inference ---------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)

    def detect_language(self, clips: Sequence[Samples]) -> list[str]:
        raise NotImplementedError("Parakeet does not report the language it decoded")

    def transcribe_batch(
        self,
        language: str | None,
        chunks: Sequence[Samples],
        draft: bool = False,
        prompt: str | None = None,
        live: bool = False,
    ) -> list[ChunkTranscript]:
        """One NeMo ``transcribe`` call for all ``chunks`` (the model detects v3's language itself).
        ``draft`` and ``live`` change nothing: TDT decoding is greedy, its word times come free
        and its encoder takes the audio's own length; nor does ``prompt``: the transducer has no
        text context to condition on."""
        assert self.model is not None, "model not loaded"
        import torch

        audio = [np.ascontiguousarray(c, dtype=np.float32) for c in chunks]  # memmap slices -> heap, per batch
        if self.settings.cpu_threads > 0 and torch.get_num_threads() != self.settings.cpu_threads:
            torch.set_num_threads(self.settings.cpu_threads)  # this inference thread too, not only the loader's
        with self._lock, torch.inference_mode(), self._autocast():
            out = self.model.transcribe(
                audio, batch_size=len(audio), timestamps=True, return_hypotheses=True, verbose=False, num_workers=0
            )
        if isinstance(out, tuple):  # older NeMo: (best, all)
            out = out[0]
        return [to_chunk_transcript(h, len(a) / SAMPLE_RATE) for h, a in zip(out, audio, strict=True)]


def _r(x) -> float:
    return round(float(x), 2)


def to_chunk_transcript(hyp, duration_s: float) -> ChunkTranscript:
    """NeMo hypothesis -> words with a Whisper-style trailing space (times rounded to 10 ms) and segments."""
    text = (hyp.text if isinstance(hyp.text, str) else "").strip()
    stamps = getattr(hyp, "timestamp", None) or {}
    words = [
        Word(str(w["word"]).strip() + " ", _r(w["start"]), max(_r(w["start"]), _r(w["end"])))
        for w in stamps.get("word", [])
        if str(w.get("word", "")).strip()
    ]
    segments = [
        TextSegment(start=_r(s["start"]), end=max(_r(s["start"]), _r(s["end"])), text=str(s["segment"]).strip())
        for s in stamps.get("segment", [])
        if str(s.get("segment", "")).strip()
    ]
    if text and " ".join(s.text for s in segments) != " ".join(text.split()):
        # Segments must carry the whole text (the core joins them): fall back to one span.
        end = words[-1].end if words else duration_s
        segments = [TextSegment(start=words[0].start if words else 0.0, end=end, text=text)]
    return ChunkTranscript(words, segments)
