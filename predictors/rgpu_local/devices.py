"""The local mode runs on the CPU unless a device is configured."""

from __future__ import annotations

from typing import Protocol, TypeVar


class HasDevice(Protocol):
    device: str


S = TypeVar("S", bound=HasDevice)


def cpu_unless_configured(settings: S) -> S:
    """``settings`` with ``device`` set to ``cpu`` where it was left ``auto``: a laptop with a
    small GPU should not have it taken without asking."""
    if settings.device == "auto":
        settings.device = "cpu"
    return settings
