"""Pure: speaker-attributed transcription in the cluster, the transcriber -> diarizer wiring.

When the diarizer is enabled, the file transcriber gets the diarizer's in-cluster URL and the path
of the primary API key in its mounted key volume (``REFLECTOR_GPU_DIARIZATION_URL`` /
``_APIKEY_FILE``; the key file is re-read on every call, so a rotation reaches it), and the
diarizer's NetworkPolicy admits the file transcriber's pods (:mod:`networkpolicy`, feature
``transcriber``). Only the file transcriber: long diarized uploads must not land on the live pool,
so they are routed to it by path (``/transcriber-file/v1/audio/transcriptions``, see
``rgpu_contract.DEDICATED_ROUTES`` and :mod:`routing`), and the live transcriber, having no
diarizer, answers ``diarized_json`` with a 400 naming that path. With the diarizer off nothing is
wired and the file transcriber answers ``diarize`` with the same 400.
"""

from __future__ import annotations

from typing import Any

import rgpu_contract as contract

from . import components as c

Obj = dict[str, Any]
#: The transcriber component that calls the diarizer.
CALLER = "transcriber-file"
#: Where the primary key is in every predictor's key volume (``inferenceservice`` mounts the
#: API-key Secret's references as ``key-0``, ``key-1``, ... with the primary first).
PRIMARY_KEY_FILE = f"{contract.API_KEY_MOUNT_DIR}/key-0"


def wired(spec: Obj, component: c.Component) -> bool:
    """``component`` calls the diarizer: the file transcriber, with the diarizer enabled."""
    return component.name == CALLER and c.enabled(spec, c.BY_NAME["diarizer"])


def diarizer_url(namespace: str, owner: str, domain: str) -> str:
    """The diarizer predictor Service in the cluster (port 80 -> 8080)."""
    return f"http://{c.predictor_service(owner, c.BY_NAME['diarizer'])}.{namespace}.svc.{domain}"


def env(spec: Obj, component: c.Component, namespace: str, owner: str, domain: str) -> list[Obj]:
    """The environment a transcriber needs to call the diarizer (empty when it does not)."""
    if not wired(spec, component):
        return []
    return [
        {"name": contract.ENV_DIARIZATION_URL, "value": diarizer_url(namespace, owner, domain)},
        {"name": contract.ENV_DIARIZATION_APIKEY_FILE, "value": PRIMARY_KEY_FILE},
    ]


def caller_selector() -> Obj:
    """The pods of the transcriber that calls the diarizer, in the diarizer's namespace.

    The labels carry no owner (the NetworkPolicy features see the spec, not the resource's name):
    file transcribers of another ReflectorGPU in the same namespace match too; they still need
    this resource's API key."""
    return {"matchLabels": {c.LABEL_PART_OF: c.PART_OF, c.LABEL_COMPONENT: CALLER}}
