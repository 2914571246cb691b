"""Pure comparisons: does a live object already hold what we want, and what patch turns old into new.

``contains(desired, live)`` is the no-write test: the server adds defaults and other controllers
add fields, so "every field we set has our value" is the right question, not equality. Two
things are equal when their meaning is, because the server rewrites them:

- quantities (``resources.requests/limits``, ``sizeLimit``) by value: the API server and KServe's
  webhook store the canonical form (``1000m`` -> ``1``);
- the KServe deployment mode by its canonical name: v0.17+ rewrites ``RawDeployment`` to
  ``Standard`` (:mod:`kserve`).

Without these, every reconcile would write, the server would rewrite, and so on forever.
"""

from __future__ import annotations

from typing import Any

from . import kserve, quantity

#: Keys whose values (or whose map values) are quantities.
QUANTITY_MAPS = frozenset({"requests", "limits"})
QUANTITY_KEYS = frozenset({"sizeLimit", "modelSize"})


def _scalar_equal(desired: Any, live: Any, key: str | None, parent: str | None) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if key in QUANTITY_KEYS or parent in QUANTITY_MAPS:
        if quantity.is_quantity(desired) and quantity.is_quantity(live):
            return quantity.equal(desired, live)
    if key == kserve.ANN_DEPLOYMENT_MODE and isinstance(desired, str) and isinstance(live, str):
        return kserve.same_mode(desired, live)
    return bool(desired == live)


def contains(desired: Any, live: Any, key: str | None = None, parent: str | None = None) -> bool:
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(v, live[k], k, key) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(contains(d, v, None, key) for d, v in zip(desired, live, strict=True))
        )
    return _scalar_equal(desired, live, key, parent)


def owned_fields(desired: dict[str, Any]) -> dict[str, Any]:
    """The parts of a manifest we compare: everything but metadata noise, status and the name."""
    meta = desired.get("metadata", {})
    out = {k: v for k, v in desired.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    out["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
    return out


def up_to_date(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    return (
        live is not None
        and not live.get("metadata", {}).get("deletionTimestamp")
        and contains(owned_fields(desired), live)
    )


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 merge patch from ``old`` to ``new`` (None deletes a key)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch
