"""Pure comparisons: does a live object already hold what we want, and what patch turns old into new.

``contains(desired, live)`` is the no-write test: the server adds defaults and other controllers
add fields, so "every field we set has our value" is the right question, not equality.
"""

from __future__ import annotations

from typing import Any


def contains(desired: Any, live: Any) -> bool:
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(contains(d, v) for d, v in zip(desired, live, strict=True))
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if (
        isinstance(desired, (int, float))
        and isinstance(live, str)
        or isinstance(desired, str)
        and isinstance(live, (int, float))
    ):
        return str(desired) == str(live)  # quantities: 1 vs "1"
    return desired == live


def owned_fields(desired: dict) -> dict:
    """The parts of a manifest we compare: everything but metadata noise, status and the name."""
    meta = desired.get("metadata", {})
    out = {k: v for k, v in desired.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    out["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
    return out


def up_to_date(desired: dict, live: dict | None) -> bool:
    return (
        live is not None
        and not live.get("metadata", {}).get("deletionTimestamp")
        and contains(owned_fields(desired), live)
    )


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 merge patch from ``old`` to ``new`` (None deletes a key)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch
