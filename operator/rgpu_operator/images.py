"""Which image each predictor runs, resolved once per ReflectorGPU and kept.

An image the spec names (``images.overrides``, or ``images.tag``) is the user's choice. One the
operator fills in from its own defaults is recorded in ``status.images`` and, with policy
``Pinned`` (the default), kept on later reconciles: an operator upgrade that moves the default
tag does not restart GPU pods. New ReflectorGPUs get the new default; existing ones move when the
user sets a tag, changes the registry, or sets policy ``FollowOperator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .context import Install


def name(registry: str, predictor: str, tag: str) -> str:
    return f"{registry.rstrip('/')}/reflector-gpu-{predictor}:{tag}"


def resolve(spec: dict[str, Any], predictor: str, install: Install, pinned: Mapping[str, str]) -> str:
    images = spec["images"]
    override = (images.get("overrides") or {}).get(predictor)
    if override:
        return str(override)
    registry = images.get("registry") or install.image_registry
    if images.get("tag"):
        return name(registry, predictor, images["tag"])
    fresh = name(registry, predictor, install.image_tag)
    kept = pinned.get(predictor)
    if images.get("policy", "Pinned") == "Pinned" and kept and kept.rsplit(":", 1)[0] == fresh.rsplit(":", 1)[0]:
        return kept
    return fresh


def pinned_from(owner: dict[str, Any]) -> dict[str, str]:
    return dict(((owner.get("status") or {}).get("images")) or {})
