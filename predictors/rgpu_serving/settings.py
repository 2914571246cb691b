"""Typed settings read from the environment.

Every knob has a default that is safe for production; names are documented in README.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    """Settings shared by every predictor (environment prefix ``REFLECTOR_GPU_``)."""

    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_", extra="ignore")

    #: The model to load when the predictor's own setting is empty (the operator sets it).
    model: str = ""

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

    # Overload protection: requests admitted at once per predictor beyond which 503 answers.
    max_pending_requests: int = 64
    retry_after_s: int = 5

    # Shutdown (SIGTERM): readiness goes false and requests are still served for the drain, then
    # no new connections and in-flight requests get the grace period to finish.
    shutdown_drain_s: float = Field(0.0, ge=0)
    shutdown_grace_s: int = Field(30, ge=1)

    log_level: str = "INFO"
    log_format: str = "json"

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
