"""Kopf operator for reflector-gpu: one ``ReflectorGPU`` resource in, KServe InferenceServices,
the API-key Secret, an Ingress or HTTPRoute and a NetworkPolicy out.

Layout: ``schema`` (the CRD, the single source of truth), pure builders (``inferenceservice``,
``secret``, ``routing``, ``networkpolicy``, ``modelcache``, ``desired``, ``status``, ``rbac``,
``install``), and the only modules with I/O: ``kube`` (API calls), ``reconcile`` and ``handlers``.
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
