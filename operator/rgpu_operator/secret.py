"""Pure builder: the generated API-key Secret.

The key is an input (the handler draws it once); the reconciler only writes ``data`` when the
Secret does not exist yet, so a key is never rotated by accident.
"""

from __future__ import annotations

import base64
from typing import Any

from . import GROUP
from . import components as c

KEY = "apikey"
ANN_GENERATED = f"{GROUP}/generated"


def build(owner: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The Secret; ``key=None`` gives only the fields we own on an existing one (no data)."""
    name = owner["metadata"]["name"]
    meta = c.metadata(owner, c.secret_name(name), "apikey")
    meta["annotations"] = {ANN_GENERATED: "true"}
    out = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}
    if key is not None:
        out["data"] = {KEY: base64.b64encode(key.encode()).decode()}
    return out


def wanted(spec: dict[str, Any]) -> bool:
    return not spec["auth"].get("existingSecret")
