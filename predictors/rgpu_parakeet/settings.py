"""Parakeet predictor settings (environment prefix ``REFLECTOR_GPU_PARAKEET_``).

The profile comes from ``REFLECTOR_GPU_PROFILE`` (``live`` | ``file``), the variable the operator
sets per InferenceService; batch size, batch wait and chunk length default per profile and each
can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import rgpu_contract as contract


@dataclass(frozen=True)
class Profile:
    #: Chunks per model call (one batched ``transcribe``).
    batch_size: int
    #: How long a partial batch waits for more work (concurrent requests), in milliseconds.
    max_batch_wait_ms: float
    #: Longest chunk handed to the model; longer audio is VAD-chunked.
    max_chunk_s: float


PROFILES: dict[str, Profile] = {
    # Short clips, many requests in flight: wait a little so concurrent clips share one call.
    "live": Profile(batch_size=16, max_batch_wait_ms=25.0, max_chunk_s=30.0),
    # Long recordings: VAD chunks of one file go in batches right away; the batch bounds the
    # GPU memory a multi-hour file needs (batch_size x max_chunk_s of audio per forward pass).
    "file": Profile(batch_size=8, max_batch_wait_ms=5.0, max_chunk_s=30.0),
}


class ParakeetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_PARAKEET_", extra="ignore", protected_namespaces=())

    #: A ``.nemo`` file, a directory holding one (KServe ``/mnt/models``), or a hub name such as
    #: ``nvidia/parakeet-tdt-0.6b-v2`` (needs network). Empty: KServe's ``--model_dir``.
    model: str = ""
    #: ``live`` or ``file`` (``REFLECTOR_GPU_PROFILE``).
    profile: str = Field("live", validation_alias=AliasChoices(contract.ENV_PROFILE, "REFLECTOR_GPU_PARAKEET_PROFILE"))
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    #: Compute precision on GPU: auto (bfloat16 where supported, else float16), float32, float16, bfloat16.
    #: CPU always runs float32.
    dtype: str = "auto"
    #: Languages the model accepts, comma-separated; empty: decided by the model name
    #: (parakeet-tdt-0.6b-v3: 25 European languages; anything else: English only).
    languages: str = ""
    batch_size: int | None = None  # default: the profile's
    max_batch_wait_ms: float | None = None  # default: the profile's
    max_chunk_s: float | None = None  # default: the profile's
    cpu_threads: int = 0  # 0: torch's default
    #: NeMo's own log level (its INFO lines repeat on every call); routed through the service's logging.
    nemo_log_level: str = "ERROR"

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        value = (value or "live").strip().lower()
        if value not in contract.PROFILES:
            raise ValueError(f"{contract.ENV_PROFILE} must be one of {', '.join(contract.PROFILES)}; got '{value}'")
        return value

    @property
    def resolved(self) -> Profile:
        base = PROFILES[self.profile]
        return Profile(
            batch_size=self.batch_size or base.batch_size,
            max_batch_wait_ms=base.max_batch_wait_ms if self.max_batch_wait_ms is None else self.max_batch_wait_ms,
            max_chunk_s=self.max_chunk_s or base.max_chunk_s,
        )
