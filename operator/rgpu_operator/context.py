"""What the pure builders need to know beyond the ReflectorGPU itself: the install (from the
operator's settings) and the state observed in the cluster. Plain data, built by the I/O shell
(or by ``render`` from flags), so a plan is a function of (owner, context) alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .kserve import LATEST, Version
from .settings import Settings


@dataclass(frozen=True)
class Install:
    """Per-install facts (operator settings and the KServe version in use)."""

    kserve: Version = Version(*LATEST)
    image_registry: str = Settings.image_registry
    image_tag: str = Settings.image_tag
    edge: str = Settings.edge
    monitoring_namespaces: tuple[str, ...] = Settings.monitoring_namespaces
    cluster_domain: str = Settings.cluster_domain
    #: (namespace, pod labels) of the operator when it probes readiness; None: it does not.
    operator_peer: tuple[str, tuple[tuple[str, str], ...]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, kserve: Version) -> Install:
        peer = None
        if settings.probe_readiness and settings.pod_namespace:
            peer = (settings.pod_namespace, settings.pod_labels)
        return cls(
            kserve=kserve,
            image_registry=settings.image_registry,
            image_tag=settings.image_tag,
            edge=settings.edge,
            monitoring_namespaces=settings.monitoring_namespaces,
            cluster_domain=settings.cluster_domain,
            operator_peer=peer,
        )


@dataclass(frozen=True)
class Observed:
    """What the reconciler read that changes what is built (empty for a first render)."""

    #: Component -> ``status.deploymentMode`` KServe recorded on its live InferenceService.
    deployment_modes: Mapping[str, str] = field(default_factory=dict)
    #: Another ReflectorGPU (``namespace/name``) owns this one's ingress host; its route is withheld.
    host_taken_by: str | None = None
    #: API discovery says the cluster serves ``monitoring.coreos.com/v1`` PodMonitor; ``render``
    #: assumes it does.
    podmonitor_served: bool = False
    #: modelCache.type PVC: the claim's access modes (empty: the claim was not found); None: not read.
    model_pvc_modes: tuple[str, ...] | None = None
