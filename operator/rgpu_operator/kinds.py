"""The resource kinds the operator reads or writes, as lightkube resource classes.

Built-in kinds come from lightkube's generated models (``lightkube-models``, the Kubernetes
OpenAPI); the custom kinds (ours, KServe's, Gateway API's, kopf's) are declared here once, with
the plural their CRDs define. Nothing else in the operator names a plural.
"""

from __future__ import annotations

from typing import Any

from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from . import GROUP, KIND, PLURAL, VERSION, peering

#: (group, version, kind, plural, namespaced) of every custom kind used.
CUSTOM: tuple[tuple[str, str, str, str, bool], ...] = (
    (GROUP, VERSION, KIND, PLURAL, True),
    ("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices", True),
    ("serving.kserve.io", "v1alpha1", "LocalModelCache", "localmodelcaches", False),
    ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True),
    ("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", True),
    ("gateway.envoyproxy.io", "v1alpha1", "SecurityPolicy", "securitypolicies", True),
    (peering.GROUP, peering.VERSION, peering.CLUSTER_KIND, peering.CLUSTER_PLURAL, False),
    (peering.GROUP, peering.VERSION, peering.NAMESPACED_KIND, peering.NAMESPACED_PLURAL, True),
)

for _group, _version, _kind, _plural, _namespaced in CUSTOM:
    if _namespaced:
        create_namespaced_resource(_group, _version, _kind, _plural)
    else:
        create_global_resource(_group, _version, _kind, _plural)


def resource(api_version: str, kind: str) -> Any:
    """The lightkube class for ``apiVersion``/``kind`` (a built-in model or a declared custom one).

    Typed ``Any``: lightkube's overloads are keyed on the class, which is only known at run time.
    """
    return resource_registry.load(api_version, kind)


def namespaced(api_version: str, kind: str) -> bool:
    from lightkube.core.resource import NamespacedResource

    return issubclass(resource(api_version, kind), NamespacedResource)
