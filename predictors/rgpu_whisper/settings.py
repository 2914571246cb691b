"""Whisper predictor settings (environment prefix ``REFLECTOR_GPU_WHISPER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WhisperSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_WHISPER_", extra="ignore", protected_namespaces=())

    #: A CTranslate2 model directory, or a hub name (e.g. ``large-v3``; needs network).
    #: Empty: KServe's ``--model_dir`` (``/mnt/models``).
    model: str = ""
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto -> float16 on GPU, int8 on CPU
    cpu_threads: int = 0  # 0: CTranslate2's default
    batch_size: int = 8
    beam_size: int = 5
    #: A chunk whose text compresses better than this (gzip ratio: the decoder repeated itself)
    #: is decoded again with temperature fallback; 0 turns the check off. Whisper's default.
    compression_ratio_threshold: float = 2.4
    #: Live chunks (realtime turns and their partial drafts) shorter than 30 s are encoded in a
    #: window of the batch's longest chunk plus this many seconds instead of Whisper's fixed 30 s
    #: (CTranslate2 takes shorter inputs): the encoder costs about a tenth for a 3 s turn on a
    #: CPU. With under ~2 s of room its decoder often loops; 0 pads every chunk to 30 s, as
    #: openai-whisper does. Files and clips over HTTP always get the 30 s window.
    window_padding_s: float = Field(3.0, ge=0)
    max_batch_wait_ms: float = 10.0
    #: Where hub downloads are cached; ``HF_HUB_OFFLINE=1`` forbids downloads.
    download_root: str | None = None
