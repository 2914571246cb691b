"""Pure: which ReflectorGPU keeps an ingress host two of them ask for.

Two routes for one host would fight (ingress-nginx refuses or merges them, a Gateway picks one
by its own rules), and each operator reconcile would rewrite its own. So the oldest claim wins
(creation time, then namespace/name) and every other claimant withholds its route and reports
the conflict. The decision only depends on the objects, so both sides agree without talking.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _host(obj: Obj) -> str | None:
    ingress = (obj.get("spec") or {}).get("ingress") or {}
    host = ingress.get("host")
    if not ingress.get("enabled") or not host or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return None
    return str(host).lower()


def _claim(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta["name"]))


def host_taken_by(owner: Obj, others: list[Obj]) -> str | None:
    """``namespace/name`` of the ReflectorGPU that keeps ``owner``'s host, or None if it is
    ``owner`` (or nobody else asks for it)."""
    host = _host(owner)
    if host is None:
        return None
    uid = owner["metadata"].get("uid")
    rivals = [o for o in others if o["metadata"].get("uid") != uid and _host(o) == host]
    winner = min([owner, *rivals], key=_claim)
    if winner is owner:
        return None
    meta = winner["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"
