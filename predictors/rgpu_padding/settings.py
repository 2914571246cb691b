"""Padding predictor settings (environment prefix ``REFLECTOR_GPU_PADDING_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class PaddingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_PADDING_", extra="ignore")

    #: Opus bit rate of the padded track (the reference's 128 kb/s).
    bit_rate: int = 128_000
    #: Largest delay accepted, in seconds (the reference's 5 hours).
    max_delay_s: float = 18_000.0
    #: Tracks encoded at once (CPU-bound); further admitted requests wait for one
    #: (admission: REFLECTOR_GPU_MAX_IN_FLIGHT / REFLECTOR_GPU_MAX_QUEUED).
    max_concurrent_jobs: int = 2
    #: How often a running job checks that its caller is still connected.
    cancel_check_interval_s: float = 2.0
    #: Content-Type sent with the upload (empty: none, for URLs presigned without one).
    upload_content_type: str = "audio/webm"
