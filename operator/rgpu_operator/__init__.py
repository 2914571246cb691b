"""Kopf operator for reflector-gpu: one ``ReflectorGPU`` resource in, KServe InferenceServices,
the API-key Secret, an HTTPRoute or Ingress and a NetworkPolicy per component out.

Layout: ``schema`` (the CRD, the single source of truth) and ``rules`` (its checks in Python),
pure builders and facts (``inferenceservice``, ``secret``, ``routing``, ``networkpolicy``,
``modelcache``, ``desired``, ``status``, ``sizing``, ``kserve``, ``names`` ...), ``render`` (the
steady state, for review), and the only modules with I/O: ``api`` + ``kinds`` (lightkube),
``probe``, ``reconcile`` and ``handlers``.
"""

from __future__ import annotations

#: API group, version and names of the custom resource.
GROUP = "reflector.monadical.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ReflectorGPU"
PLURAL = "reflectorgpus"
SINGULAR = "reflectorgpu"
SHORT_NAMES = ["rgpu"]

#: Field manager used for server-side apply; also the value of ``app.kubernetes.io/managed-by``.
FIELD_MANAGER = "reflector-gpu-operator"

__version__ = "0.1.0"
