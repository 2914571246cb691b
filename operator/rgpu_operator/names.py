"""Names and label values that stay within Kubernetes' and KServe's limits for any CR name.

A ReflectorGPU name is a DNS-1123 subdomain: up to 253 characters, dots allowed, a digit
first allowed. An InferenceService name must match KServe's ``IsvcNameFmt``
(``[a-z]([-a-z0-9]*[a-z0-9])?``, ``validateInferenceServiceName`` in the validating webhook)
and stay short enough for what KServe derives from it (``<name>-predictor`` Deployment and
Service, DNS-1035 labels of at most 63 characters): the operator keeps it at 53. Label values
are at most 63 characters. Names that do not fit keep a readable prefix and end in a hash of
the full name, so they stay unique and stable.
"""

from __future__ import annotations

import hashlib
import re

ISVC_NAME_MAX = 53
LABEL_VALUE_MAX = 63
SUBDOMAIN_MAX = 253
_HASH = 8


def digest(text: str, size: int = _HASH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def _dns1035(text: str) -> str:
    """Lowercase letters, digits and '-', starting with a letter."""
    out = re.sub(r"[^a-z0-9-]", "-", text.lower())
    return out if out[:1].isalpha() else f"r-{out}"


def isvc_name(owner: str, component: str) -> str:
    """``<owner>-<component>``, or ``<prefix>-<hash>-<component>`` when that would not be a
    valid InferenceService name of at most 53 characters."""
    plain = f"{owner}-{component}"
    if len(plain) <= ISVC_NAME_MAX and _dns1035(owner) == owner:
        return plain
    room = ISVC_NAME_MAX - len(component) - _HASH - 2
    prefix = _dns1035(owner)[:room].rstrip("-") or "r"
    return f"{prefix}-{digest(owner)}-{component}"


def label_value(value: str) -> str:
    """A label value (at most 63 characters, alphanumeric at both ends)."""
    if len(value) <= LABEL_VALUE_MAX:
        return value
    prefix = value[: LABEL_VALUE_MAX - _HASH - 1].rstrip("-._")
    return f"{prefix}-{digest(value)}"


def subdomain(name: str) -> str:
    """A DNS-1123 subdomain name (Secrets, Ingresses ...) of at most 253 characters."""
    if len(name) <= SUBDOMAIN_MAX:
        return name
    prefix = name[: SUBDOMAIN_MAX - _HASH - 1].rstrip("-.")
    return f"{prefix}-{digest(name)}"
