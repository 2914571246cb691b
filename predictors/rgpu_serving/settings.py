"""Typed settings read from the environment.

Every knob has a default that is safe for production; names are documented in README.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    """Settings shared by every predictor (environment prefix ``REFLECTOR_GPU_``).

    The shared ``REFLECTOR_GPU_MODEL`` is read by the model resolver (``rgpu_asr.models``).
    """

    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_", extra="ignore")

    # Auth. The key variable name is kept from the reference deployment.
    apikey: str = Field("", repr=False, description="API keys, comma-separated.")
    apikey_file: Path | None = Field(None, description="File or directory holding API keys.")
    auth_disabled: bool = False

    # User-supplied URLs.
    url_allowlist: str = ""
    max_upload_mb: float = 1024.0
    max_download_mb: float = 4096.0
    fetch_connect_timeout_s: float = 10.0
    fetch_read_timeout_s: float = 60.0
    fetch_total_timeout_s: float = 1800.0
    fetch_max_redirects: int = 5

    upload_dir: Path = Path(tempfile.gettempdir()) / "reflector-gpu"
    max_multipart_parts: int = 64

    # Admission (rgpu_serving.admission, docs/scaling.md): requests worked on at once, and
    # requests waiting (FIFO) behind them; beyond both, 503 + Retry-After. Unset: the predictor's
    # own defaults (Predictor.default_limits). The operator sets both from maxInFlight/maxQueued.
    max_in_flight: int | None = Field(None, ge=1)
    max_queued: int | None = Field(None, ge=0)
    #: Deprecated (before maxInFlight/maxQueued): the total held at once. Honoured only when
    #: REFLECTOR_GPU_MAX_QUEUED is unset: in flight up to it, the rest of it queued.
    max_pending_requests: int | None = Field(None, ge=1)
    retry_after_s: int = 5

    # Realtime WebSocket sessions (/v1/realtime): per replica, beyond which the upgrade is refused
    # with 503; each at most this long; audio buffered for one turn; partial re-decode interval.
    realtime_max_sessions: int = Field(16, ge=0)
    realtime_max_session_s: float = Field(3600.0, gt=0)
    realtime_max_buffer_s: float = Field(120.0, gt=0, le=600)
    realtime_partial_interval_ms: int = Field(250, ge=100, le=1000)

    # Shutdown (SIGTERM): readiness goes false and requests are still served for the drain, then
    # no new connections and in-flight requests get the grace period to finish.
    shutdown_drain_s: float = Field(0.0, ge=0)
    shutdown_grace_s: int = Field(30, ge=1)

    # Where /metrics is served: 0 on the API port (open, the local mode's default); the KServe
    # entry point defaults to its own port (rgpu_contract.METRICS_PORT) so a NetworkPolicy can
    # admit monitoring to it alone. /docs and /openapi.json: served behind the key, or off.
    metrics_port: int = Field(0, ge=0, le=65535)
    api_docs: Literal["auth", "open", "off"] = "auth"

    log_level: str = "INFO"
    log_format: str = "json"

    @field_validator("api_docs", mode="before")
    @classmethod
    def _docs_switch(cls, value: Any) -> Any:
        """``true`` / ``false`` as the operator writes them: behind the key, or off."""
        aliases = {"true": "auth", "1": "auth", "yes": "auth", "false": "off", "0": "off", "no": "off"}
        return aliases.get(str(value).strip().lower(), str(value).strip().lower())

    def admission_limits(self, default_in_flight: int, default_queued: int) -> tuple[int, int]:
        """(max in flight, max queued): the settings, else the predictor's defaults; the
        deprecated total (``max_pending_requests``) split into both when it alone is given."""
        in_flight = self.max_in_flight or default_in_flight
        if self.max_queued is not None:
            return in_flight, self.max_queued
        if self.max_pending_requests is not None:
            in_flight = min(in_flight, self.max_pending_requests)
            return in_flight, self.max_pending_requests - in_flight
        return in_flight, default_queued

    def url_allowlist_entries(self) -> list[str]:
        return [item.strip() for item in self.url_allowlist.split(",") if item.strip()]

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * 1024 * 1024)


class ListenSettings(BaseSettings):
    """Where the local mode listens (``HOST``/``PORT``, no prefix, as the issue asks)."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
