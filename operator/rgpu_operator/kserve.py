"""What the operator must know about the installed KServe: pure facts, each cited from KServe's
source (copies in ``../shared/kserve/src``; tags from github.com/kserve/kserve).

Deployment-mode names changed in v0.16 and KServe's admission treats old and new names
differently per version:

- v0.15 knows only ``RawDeployment`` / ``Serverless``. The controller falls back to the
  ConfigMap default for any other name (``GetDeploymentMode``, v0.15.2
  ``pkg/controller/v1beta1/inferenceservice/utils/utils.go``), and the validating webhook's
  ``validateAutoScalingCompExtension`` (v0.15.2 validation) applies Knative's rules to it.
- v0.16 records the new name (``Standard`` / ``Knative``) in ``status.deploymentMode``
  (``GetDeploymentMode`` and ``updateStatus``, v0.16.0 ``controller.go``), its mutating webhook
  does not rewrite legacy names, and ``validateDeploymentMode`` (v0.16.0 validation) rejects an
  update whose annotation differs from ``status.deploymentMode``, the update removing KServe's
  finalizer included. ``validateAutoScalingCompExtension`` checks HPA/KEDA fields only under
  ``Standard``: ``RawDeployment`` gets Knative's rules (no ``cpu`` metric, no deploymentStrategy).
- v0.17+ rewrites legacy names in the mutating webhook (``DefaultInferenceService``, "Normalize
  deprecated annotation values", v0.17.0 ``inference_service_defaults.go``) and compares the
  rewritten annotation with ``status.deploymentMode``; v0.19 also normalises the status side
  (``validateDeploymentMode`` calls ``ParseDeploymentMode``, kserve#5427).

So the operator creates with the name the installed version knows and, on update, writes the
live ``status.deploymentMode`` back (:func:`mode_for_update`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Annotation and label keys (``pkg/constants/constants.go``: ``DeploymentMode``,
#: ``AutoscalerClass``, ``NetworkVisibility`` / ``ClusterLocalVisibility``).
ANN_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
ANN_AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
LABEL_VISIBILITY = "networking.kserve.io/visibility"
CLUSTER_LOCAL = "cluster-local"

LEGACY_RAW = "RawDeployment"
STANDARD = "Standard"
LEGACY_SERVERLESS = "Serverless"
KNATIVE = "Knative"
#: Legacy name -> the name v0.16+ uses (``ParseDeploymentMode``, constants.go).
CANONICAL = {LEGACY_RAW: STANDARD, LEGACY_SERVERLESS: KNATIVE}

#: The first version that knows ``Standard`` / ``Knative``.
NEW_NAMES_SINCE = (0, 16)
#: The oldest version the operator supports (``autoScaling.metrics``/KEDA need 0.15).
OLDEST = (0, 15)
#: The first version whose External metrics take ``authenticationRef`` (``ExtMetricAuthentication``
#: in ``component.go``; v0.15's has ``metric`` and ``target`` only).
KEDA_AUTH_SINCE = (0, 16)
#: What ``render`` assumes when no version is given: the newest line the tests emulate.
LATEST = (0, 20)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")


@dataclass(frozen=True, order=True)
class Version:
    """A KServe minor version (patch releases do not change the rules above)."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def tuple(self) -> tuple[int, int]:
        return (self.major, self.minor)


def parse_version(text: str) -> Version:
    """``0.15``, ``v0.16.0`` or ``0.17.1-rc0`` -> Version; ValueError names what is accepted."""
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"KServe version {text!r} is not X.Y (e.g. 0.15, v0.16.0)")
    version = Version(int(match[1]), int(match[2]))
    if version.tuple < OLDEST:
        raise ValueError(f"KServe {version} is not supported: 0.15 or later is needed")
    return version


def version_from_image(image: str) -> Version | None:
    """The version in a ``kserve-controller`` image tag (``kserve/kserve-controller:v0.15.2``);
    None for a digest-only or unversioned reference (``latest``)."""
    name = image.split("@", 1)[0]
    tail = name.rsplit("/", 1)[-1]
    if ":" not in tail:
        return None
    try:
        return parse_version(tail.rsplit(":", 1)[1])
    except ValueError:
        return None


def standard_mode(version: Version) -> str:
    """The name the installed KServe knows for raw Deployments."""
    return STANDARD if version.tuple >= NEW_NAMES_SINCE else LEGACY_RAW


def canonical(mode: str) -> str:
    return CANONICAL.get(mode, mode)


def same_mode(a: str | None, b: str | None) -> bool:
    """Old and new names of one mode are equal (no write loop when a webhook rewrites them)."""
    return a is not None and b is not None and canonical(a) == canonical(b)


def is_knative(mode: str) -> bool:
    return canonical(mode) == KNATIVE


def mode_for_update(version: Version, live_status_mode: str | None) -> str:
    """The annotation to write on an existing InferenceService: the mode KServe recorded in its
    status when there is one (v0.16's ``validateDeploymentMode`` accepts nothing else), else
    the name the installed version knows."""
    return live_status_mode or standard_mode(version)
