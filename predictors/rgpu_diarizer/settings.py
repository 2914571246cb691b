"""Diarizer predictor settings (environment prefix ``REFLECTOR_GPU_DIARIZER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DiarizerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_DIARIZER_", extra="ignore", protected_namespaces=())

    #: A pyannote pipeline directory (``config.yaml`` + the weights it names), a ``config.yaml``
    #: file, or a Hugging Face hub name (e.g. ``pyannote/speaker-diarization-3.1``; needs network
    #: and a token). Empty: KServe's ``--model_dir`` (``/mnt/models``).
    model: str = ""
    #: Hugging Face token for gated hub pipelines (falls back to ``HF_TOKEN`` / the HF login).
    hf_token: str = Field("", repr=False)
    #: Where hub downloads are cached (``HF_HUB_OFFLINE=1`` forbids downloads).
    cache_dir: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:<n>
    #: Deprecated: use REFLECTOR_GPU_MAX_QUEUED (the serving core's admission queue), which wins.
    max_queued: int | None = Field(None, ge=0)
    #: Longest recording accepted, in seconds (413 beyond); bounds the memory one request takes.
    max_duration_s: float = 4 * 3600.0
    #: Largest num_speakers/min_speakers/max_speakers a request may ask for (400 beyond); pyannote
    #: keeps per-frame speaker counts in 8 bits and fails on larger values (at most 127).
    speaker_limit: int = Field(100, ge=1, le=127)
    #: Override the pipeline's batch sizes (0: keep the pipeline config's).
    segmentation_batch_size: int = 0
    embedding_batch_size: int = 0
    #: torch intra-op threads on CPU (0: torch's default).
    cpu_threads: int = 0
    #: A known speaker's reference clip names a diarized speaker when the cosine similarity of its
    #: embedding and that speaker's centroid is at least this (pairs matched one to one, most
    #: similar first). Depends on the embedding model: calibrated for the packaged Resemblyzer
    #: encoder (same voice 0.92-0.98, other voices 0.55-0.66 on the test recordings).
    speaker_match_threshold: float = Field(0.8, ge=-1.0, le=1.0)
