"""Pure: the exact Reflector settings for one ReflectorGPU, as Reflector reads them.

Checked against Reflector's ``server/reflector/settings.py`` and its processors (Monadical-SAS/
reflector, 2026-02): each ``*_BACKEND=modal`` processor calls ``*_URL`` with
``Authorization: Bearer <*_MODAL_API_KEY>``, the LLM client ``LLM_URL`` + ``/chat/completions``
with ``LLM_API_KEY`` and ``model=LLM_MODEL``, and the padding processor
(``audio_padding_modal.py``) reads ``PADDING_URL`` and its key from ``MODAL_API_KEY``.

The translator is the exception: ``TranscriptTranslatorAutoProcessor`` passes the settings
named ``TRANSLATION_MODAL_*`` to the modal processor, while settings.py declares
``TRANSLATE_MODAL_API_KEY``, so no key is ever sent. ``translator.auth: networkPolicy`` is the
workaround; the one-line upstream fix renames the setting to ``TRANSLATION_MODAL_API_KEY``.
Key values never appear here: secret settings name the Secret and key to read.
"""

from __future__ import annotations

from typing import Any

from . import components as c
from . import llmruntime, routing

Obj = dict[str, Any]

#: URL setting -> (backend setting, key setting) for the modal processors.
MODAL = {
    "TRANSCRIPT_URL": ("TRANSCRIPT_BACKEND", "TRANSCRIPT_MODAL_API_KEY"),
    "DIARIZATION_URL": ("DIARIZATION_BACKEND", "DIARIZATION_MODAL_API_KEY"),
    "TRANSLATE_URL": ("TRANSLATION_BACKEND", None),
}
KEY_OF = {"LLM_URL": "LLM_API_KEY", "PADDING_URL": "MODAL_API_KEY"}
TRANSLATOR_WORKAROUND = (
    "translator.auth=networkPolicy: the translator takes no API key and is not routed through the "
    "ingress; TRANSLATE_URL is in-cluster and only pods labelled reflector.monadical.com/client=true "
    "reach it (Reflector's translator sends no key; docs/operator.md, Translator)"
)
TRANSLATOR_NO_KEY = (
    "Reflector's translator sends no API key (its auto-processor reads TRANSLATION_MODAL_API_KEY, "
    "settings.py declares TRANSLATE_MODAL_API_KEY): set translator.auth: networkPolicy, or apply the "
    "one-line upstream fix (docs/operator.md, Translator)"
)


LLM_EDGE_AUTH = (
    "llm.runtime=huggingface: KServe's runtime checks no key; the route to it is authenticated at the "
    "edge (the padding predictor's /auth, asked by Envoy Gateway's extAuth or ingress-nginx's auth-url); "
    "LLM_MODEL is the served model name the runtime requires (docs/llm.md)"
)
LLM_NOT_ROUTED = (
    "llm.runtime=huggingface without the padding predictor: nothing can check the key at the edge, so the "
    "LLM is not routed; LLM_URL is in-cluster and reached only by pods labelled "
    "reflector.monadical.com/client=true (enable padding to route it; docs/llm.md)"
)


def llm_model(spec: Obj) -> str:
    """The model name the LLM endpoint serves: the custom predictor's KServe model name, or the
    runtime's ``--model_name`` (KServe's OpenAI routes answer 503 for any other)."""
    return llmruntime.served_model_name(spec) if llmruntime.on_huggingface(spec) else "llm"


def settings(spec: Obj, namespace: str, owner: str, domain: str, key: dict[str, str]) -> Obj:
    """``{env, secretEnv, notes}`` for the enabled components; ``key``: {name, key} of the API key."""
    urls = routing.endpoints(spec, namespace, owner, domain)
    env: dict[str, str] = {}
    secret_env: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    for url_var, url in urls.items():
        if url_var in MODAL:
            backend, key_var = MODAL[url_var]
            env[backend] = "modal"
            env[url_var] = url
            if key_var:
                secret_env[key_var] = dict(key)
        else:
            env[url_var] = url
            secret_env[KEY_OF[url_var]] = dict(key)
        if url_var == "LLM_URL":
            env["LLM_MODEL"] = llm_model(spec)
    if "LLM_URL" in urls and llmruntime.on_huggingface(spec) and spec["ingress"]["enabled"]:
        notes.append(LLM_EDGE_AUTH if routing.routed(spec, c.BY_NAME["llm"]) else LLM_NOT_ROUTED)
    if "TRANSLATE_URL" in urls:
        notes.append(TRANSLATOR_WORKAROUND if spec["translator"]["auth"] == "networkPolicy" else TRANSLATOR_NO_KEY)
    return {"env": env, "secretEnv": secret_env, "notes": notes}
