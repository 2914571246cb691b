"""An API server and a KServe install, emulated for the operator tests (test plumbing only).

kmock's ``KubernetesEmulator`` stores objects and serves list/watch over real HTTP, and nothing
else. What a real cluster does on top, and the operator relies on, is added here, each rule
read from the source it cites (KServe's files are in ``../shared/kserve/src``, tags from
github.com/kserve/kserve):

API server (k8s.io/apiserver, apiextensions-apiserver):
- ``uid``, ``creationTimestamp``, ``resourceVersion`` (bumped only when the stored object
  changes: a no-op write keeps it, as etcd's guaranteed update does), ``generation`` (bumped on
  changes outside metadata and status);
- server-side apply: an apply to a missing object creates it, fields the manager applied before
  and omits now are removed, lists are atomic (our manager owns every list it sets);
- JSON merge patch and JSON patch (a failed ``test`` op on resourceVersion is 422 Invalid);
- the status subresource: writes to the object keep its status, writes to ``/status`` keep the
  rest;
- the ReflectorGPU CRD's defaults, schema and CEL rules (422 Invalid otherwise), the real
  InferenceService/HTTPRoute CRD schemas;
- owner-reference garbage collection (background): dependents of a deleted owner go too;
- label selectors on list.

KServe (one of :data:`VERSIONS`, see :class:`KServe`): the mutating webhook (resource defaults,
legacy mode names rewritten from 0.17, quantities re-serialised as Go does), the validating
webhook (name, autoscaler class and fields per mode, ``validateDeploymentMode``), and the
controller's part the operator sees (``status.deploymentMode``, its own Ingress or HTTPRoutes per
InferenceService unless labelled cluster-local, an ``InternalError`` Event when the Deployment it
makes is refused, and, for a ``predictor.model`` naming a runtime it does not have,
``modelStatus`` ``InvalidSpec`` / ``RuntimeNotRecognized`` as ``reconcileModel`` in
components/predictor.go sets it; ``KServe.runtimes`` lists the installed runtimes).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import re
from decimal import Decimal
from typing import Any

import aiohttp.web
import jsonpatch
import kmock as km
from kmock._internal import k8s as km_k8s

from rgpu_operator import GROUP, PLURAL, VERSION

#: KServe versions the operator is tested against (0.17 stands for 0.17 and 0.18: the
#: mutating webhook rewrites legacy names, the validator compares exact strings).
VERSIONS = ("0.15", "0.16", "0.17")
FIELD_MANAGERS_PARAM = "fieldManager"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"
STATUS_KINDS = {"reflectorgpus", "inferenceservices"}


# --- Go's resource.Quantity, re-serialised (k8s.io/apimachinery pkg/api/resource) --------------

_QTY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")
_BIN = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DEC = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def go_quantity(value: Any) -> str:
    """``Quantity.String()`` after ``ParseQuantity``: the canonical form the API server and
    KServe's webhook (which decodes into Go structs) store: ``1000m`` -> ``1``, ``0.5`` ->
    ``500m``, ``1024Mi`` -> ``1Gi``, ``1536Mi`` stays, ``2000`` -> ``2k``."""
    text = str(value).strip()
    m = _QTY.match(text)
    if not m:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    number = Decimal(m[1])
    if m[3] in _BIN:
        amount = number * Decimal(1024) ** _BIN[m[3]]
        fmt = "binary"
    elif m[2]:
        amount = number * Decimal(10) ** int(m[2][1:])
        fmt = "exponent"
    else:
        amount = number * Decimal(10) ** _DEC[m[3] or ""]
        fmt = "decimal"
    # Precision is nano: round up (Go's AsCanonicalBytes rounds away from zero).
    amount = amount.quantize(Decimal("1e-9"), rounding="ROUND_UP") if amount != amount.to_integral() else amount
    if amount == 0:
        return "0"
    if fmt == "binary" and amount == amount.to_integral() and abs(amount) >= 1024:
        n, k = int(amount), 0
        while k < 6 and n % 1024 == 0:
            n //= 1024
            k += 1
        return f"{n}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][k]}"
    # Decimal SI (binary values below 1024 or fractional fall back to it, as Go does).
    exp = -9
    mantissa = int((amount * Decimal(10) ** 9).to_integral())
    while exp < 18 and mantissa % 1000 == 0:
        mantissa //= 1000
        exp += 3
    if fmt == "exponent":
        return f"{mantissa}" if exp == 0 else f"{mantissa}e{exp}"
    suffix = {v: k for k, v in _DEC.items()}[exp]
    return f"{mantissa}{suffix}"


# --- KServe ----------------------------------------------------------------------------------


class KServe:
    """KServe's admission and the parts of its controller the operator meets, at one version.

    ``gateway_api``: the install's ``ingress.enableGatewayApi`` (HTTPRoutes instead of an
    Ingress). ``refuse``: InferenceService name -> the API server's refusal of its Deployment.
    """

    ISVC = "inferenceservices"

    def __init__(self, version: str, *, gateway_api: bool = False):
        self.version = tuple(int(p) for p in version.split("."))
        self.gateway_api = gateway_api
        self.refuse: dict[str, str] = {}
        #: ServingRuntimes/ClusterServingRuntimes installed: name -> supported model formats
        #: (KServe's default install has kserve-huggingfaceserver, ../shared/kserve).
        self.runtimes: dict[str, tuple[str, ...]] = {"kserve-huggingfaceserver": ("huggingface",)}
        # inferenceservice-config "resource" defaults (1 CPU / 2Gi; ../shared/kserve).
        self.defaults = {"cpu": "1", "memory": "2Gi"}

    @property
    def standard(self) -> str:
        return "Standard" if self.version >= (0, 16) else "RawDeployment"

    @property
    def knative(self) -> str:
        return "Knative" if self.version >= (0, 16) else "Serverless"

    # mutating webhook: DefaultInferenceService + CustomPredictor.Default
    def mutate(self, isvc: dict) -> dict:
        isvc = copy.deepcopy(isvc)
        ann = isvc.setdefault("metadata", {}).setdefault("annotations", {})
        mode = ann.get("serving.kserve.io/deploymentMode")
        # "Normalize deprecated annotation values": from v0.17.0 (inference_service_defaults.go).
        if mode is not None and self.version >= (0, 17):
            ann["serving.kserve.io/deploymentMode"] = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(
                mode, mode
            )
        predictor = isvc.get("spec", {}).get("predictor", {})
        if "model" in predictor:
            # A model predictor (ModelSpec.Default, predictor_model.go): the defaults go on the
            # model's own container fields; KServe merges it into the runtime's container later.
            containers = [predictor["model"]]
        else:
            containers = predictor.get("containers") or [{}]
            predictor["containers"] = containers
            if len(containers) == 1 or not containers[0].get("name"):
                containers[0]["name"] = "kserve-container"
        # setResourceRequirementDefaults: only the first container, only missing keys.
        res = containers[0].setdefault("resources", {})
        for kind in ("requests", "limits"):
            section = res.setdefault(kind, {})
            for name, value in self.defaults.items():
                section.setdefault(name, value)
        # The webhook decodes into Go structs and re-encodes: quantities come back canonical.
        for container in containers:
            for kind in ("requests", "limits"):
                section = (container.get("resources") or {}).get(kind) or {}
                for name in list(section):
                    section[name] = go_quantity(section[name])
        for volume in predictor.get("volumes") or []:
            empty = volume.get("emptyDir")
            if empty and "sizeLimit" in empty:
                empty["sizeLimit"] = go_quantity(empty["sizeLimit"])
        return isvc

    # validating webhook: ValidateCreate / ValidateUpdate
    def validate(self, new: dict, old: dict | None) -> str | None:
        if old is not None:
            status_mode = (old.get("status") or {}).get("deploymentMode") or ""
            ann = (new["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode")
            # validateDeploymentMode: exact strings on 0.15-0.18 (0.19 normalises the status).
            if status_mode and ann is not None and ann != status_mode:
                return f"update rejected: deploymentMode cannot be changed from '{status_mode}' to '{ann}'"
        name = new["metadata"]["name"]
        if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):
            return (
                f'The InferenceService "{name}" is invalid: a InferenceService name must consist of lower case '
                "alphanumeric characters or '-', and must start with alphabetical character."
            )
        ann = new["metadata"].get("annotations") or {}
        klass = ann.get("serving.kserve.io/autoscalerClass")
        if klass is not None and klass not in ("hpa", "external", "keda", "none"):
            return f"[{klass}] is not a supported autoscaler class type"
        predictor = new["spec"]["predictor"]
        # ExtMetricAuthentication (component.go) arrived in v0.16: v0.15's CRD has no
        # external.authenticationRef, and a strict apply of an undeclared field fails.
        if self.version < (0, 16):
            for i, metric in enumerate((predictor.get("autoScaling") or {}).get("metrics") or []):
                if "authenticationRef" in (metric.get("external") or {}):
                    return (
                        "strict decoding error: unknown field "
                        f'"spec.predictor.autoScaling.metrics[{i}].external.authenticationRef"'
                    )
        mode = ann.get("serving.kserve.io/deploymentMode", "")
        # validateAutoScalingCompExtension: HPA/KEDA rules only under this version's raw name.
        if mode == self.standard:
            if klass == "hpa":
                metric = predictor.get("scaleMetric", "cpu")
                if metric not in ("cpu", "memory"):
                    return f"[{metric}] is not a supported metric"
                target = predictor.get("scaleTarget")
                if target is not None and metric == "cpu" and not 1 <= target <= 100:
                    return "the target utilization percentage should be a [1-100] integer"
            elif klass == "keda":
                # validateScalingKedaCompExtension (apis_serving_v1beta1_inference_service_validation.go)
                if predictor.get("scaleMetric") is not None:
                    return "ScaleMetric is not supported for KEDA"
                for metric in (predictor.get("autoScaling") or {}).get("metrics") or []:
                    if metric.get("type") != "External":
                        continue  # Resource and PodMetric: not emitted by the operator
                    external = metric.get("external")
                    if external is None:
                        return "metricSpec.External is not set for external metric source type"
                    if not (external.get("metric") or {}).get("query"):
                        return "the query should not be empty"
                    if (external.get("target") or {}).get("value") is None:
                        return "the target threshold value should not be empty"
        elif ann.get("autoscaling.knative.dev/class") != "hpa.autoscaling.knative.dev":
            if predictor.get("deploymentStrategy") is not None:
                return "customizing deploymentStrategy is only supported for raw deployment mode"
            metric = predictor.get("scaleMetric", "concurrency")
            if metric not in ("concurrency", "rps"):
                return f"[{metric}] is not a supported metric"
        low, high = predictor.get("minReplicas", 1), predictor.get("maxReplicas", 0)
        if low < 0:
            return "MinReplicas cannot be less than 0."
        if high and low > high:
            return "MinReplicas cannot be greater than MaxReplicas."
        return None

    def scaled_object(self, isvc: dict) -> dict | None:
        """The KEDA ScaledObject KServe makes for a ``keda`` InferenceService in Standard mode
        (``createKedaScaledObject`` / ``getKedaMetrics``, keda_reconciler.go): named after the
        predictor Deployment, one trigger per External metric with ``serverAddress``, ``query`` and
        ``threshold`` = ``target.value``, ``authenticationRef`` and ``authModes`` when given."""
        ann = isvc["metadata"].get("annotations") or {}
        if ann.get("serving.kserve.io/autoscalerClass") != "keda":
            return None
        predictor = isvc["spec"]["predictor"]
        triggers = []
        for metric in (predictor.get("autoScaling") or {}).get("metrics") or []:
            if metric.get("type") != "External":
                continue
            ext = metric["external"]
            trigger: dict = {
                "type": ext["metric"].get("backend", ""),
                "metadata": {
                    "serverAddress": ext["metric"].get("serverAddress", ""),
                    "query": ext["metric"].get("query", ""),
                    "threshold": str(ext["target"].get("value", "0")),
                },
            }
            if ext["metric"].get("namespace"):
                trigger["metadata"]["namespace"] = ext["metric"]["namespace"]
            auth = ext.get("authenticationRef")
            if auth:
                if auth.get("authModes"):
                    trigger["metadata"]["authModes"] = auth["authModes"]
                if auth["authenticationRef"].get("name"):
                    trigger["authenticationRef"] = {"name": auth["authenticationRef"]["name"]}
            triggers.append(trigger)
        low = predictor.get("minReplicas", 1)
        name = f"{isvc['metadata']['name']}-predictor"
        return {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": isvc["metadata"].get("namespace", "default")},
            "spec": {
                "scaleTargetRef": {"name": name},
                "triggers": triggers,
                "minReplicaCount": low,
                "maxReplicaCount": max(predictor.get("maxReplicas", 0), low),
            },
        }

    def status_mode(self, isvc: dict, config_default: str | None = None) -> str:
        """``GetDeploymentMode``: status first, then a known annotation, then the ConfigMap."""
        recorded = (isvc.get("status") or {}).get("deploymentMode")
        if recorded:
            return str(recorded)
        mode = (isvc["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode", "")
        if self.version >= (0, 16):
            mode = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(mode, mode)
        if mode in (self.standard, self.knative, "ModelMesh"):
            return mode
        return config_default or self.standard

    def deployment_problem(self, isvc: dict) -> str | None:
        """What the API server says to the Deployment KServe builds (``ValidateResourceRequirements``:
        a request above its limit), or the refusal configured for this InferenceService."""
        name = isvc["metadata"]["name"]
        if name in self.refuse:
            return self.refuse[name]
        predictor = isvc["spec"]["predictor"]
        for i, container in enumerate(predictor.get("containers") or [predictor.get("model") or {}]):
            res = container.get("resources") or {}
            for kind in ("cpu", "memory"):
                req, lim = (res.get("requests") or {}).get(kind), (res.get("limits") or {}).get(kind)
                if req is not None and lim is not None and _qty(req) > _qty(lim):
                    return (
                        f'Deployment.apps "{name}-predictor" is invalid: spec.template.spec.containers[{i}]'
                        f'.resources.requests: Invalid value: "{req}": must be less than or equal to {kind} '
                        f"limit of {lim}"
                    )
        return None

    def runtime_failure(self, isvc: dict) -> dict | None:
        """``reconcileModel`` (pkg/controller/v1beta1/inferenceservice/components/predictor.go):
        a model predictor naming a runtime KServe cannot find gets ``modelStatus.transitionStatus
        InvalidSpec`` with ``RuntimeNotRecognized``; one whose runtime lacks the model format,
        ``NoSupportingRuntime``. Custom predictors name no runtime."""
        model = isvc["spec"]["predictor"].get("model")
        if not model or not model.get("runtime"):
            return None
        formats = self.runtimes.get(model["runtime"])
        if formats is None:
            return {"reason": "RuntimeNotRecognized", "message": "Waiting for runtime to become available"}
        if model["modelFormat"]["name"] not in formats:
            return {
                "reason": "NoSupportingRuntime",
                "message": "Specified runtime does not support specified framework/version",
            }
        return None

    def routes(self, isvc: dict) -> list[dict]:
        """KServe's own route objects for a Standard-mode InferenceService that is not
        cluster-local (``RawIngressReconciler.Reconcile`` / ``RawHTTPRouteReconciler.Reconcile``):
        an Ingress named after it, or HTTPRoutes ``<name>`` and ``<name>-predictor``, each with a
        controller reference to it. ``createRawIngress`` waits for PredictorReady."""
        meta = isvc["metadata"]
        if (meta.get("labels") or {}).get("networking.kserve.io/visibility") == "cluster-local":
            return []
        if self.status_mode(isvc) not in ("Standard", "RawDeployment"):
            return []
        conditions = {c["type"]: c["status"] for c in (isvc.get("status") or {}).get("conditions") or []}
        if conditions.get("PredictorReady") != "True":
            return []
        owner = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        host = f"{meta['name']}-{meta['namespace']}.example.com"
        service = f"{meta['name']}-predictor"
        if self.gateway_api:
            return [
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "HTTPRoute",
                    "metadata": {"name": name, "namespace": meta["namespace"], "ownerReferences": [owner]},
                    "spec": {
                        "hostnames": [host],
                        "parentRefs": [{"name": "kserve-ingress-gateway", "namespace": "kserve"}],
                        "rules": [{"backendRefs": [{"name": service, "port": 80}]}],
                    },
                }
                for name in (meta["name"], service)
            ]
        return [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "annotations": dict(meta.get("annotations") or {}),
                    "ownerReferences": [owner],
                },
                "spec": {
                    "rules": [
                        {
                            "host": host,
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": service, "port": {"number": 80}}},
                                    }
                                ]
                            },
                        }
                    ]
                },
            }
        ]


def _qty(value: Any) -> Decimal:
    from rgpu_operator.quantity import parse

    return parse(value)


# --- the API server ----------------------------------------------------------------------------


def _rfc7386(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _rfc7386(out.get(key), value)
    return out


def _leaves(value: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return set().union(*(_leaves(v, (*path, k)) for k, v in value.items()))
    return {path}


def _remove(obj: dict, path: tuple[str, ...]) -> None:
    node: Any = obj
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _prune_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_empty(v) for k, v in value.items() if not (isinstance(v, dict) and not _prune_empty(v))}
    return value


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        },
        status=code,
    )


#: The namespaced kinds the operator reads or writes, by resource ("group/version/plural").
NAMESPACED_KINDS = {
    f"{GROUP}/{VERSION}/{PLURAL}": "ReflectorGPU",
    "serving.kserve.io/v1beta1/inferenceservices": "InferenceService",
    "v1/secrets": "Secret",
    "networking.k8s.io/v1/ingresses": "Ingress",
    "networking.k8s.io/v1/networkpolicies": "NetworkPolicy",
    "gateway.networking.k8s.io/v1/httproutes": "HTTPRoute",
    "v1/events": "Event",
    "apps/v1/deployments": "Deployment",
}


def serve_kinds(emu: km.KubernetesEmulator) -> None:
    """Make ``emu`` serve what a cluster with KServe and our CRD serves to the operator."""
    for resource, kind in NAMESPACED_KINDS.items():
        emu.resources[resource] = km.ResourceInfo(
            kind=kind,
            namespaced=True,
            verbs={"get", "list", "watch", "create", "patch", "delete"},
            subresources={"status"} if resource.rsplit("/", 1)[1] in STATUS_KINDS else set(),
        )
    # Every real cluster serves these; kopf waits for them in discovery (it lists neither).
    for resource, kind in {
        "v1/namespaces": "Namespace",
        "apiextensions.k8s.io/v1/customresourcedefinitions": "CustomResourceDefinition",
    }.items():
        emu.resources[resource] = km.ResourceInfo(kind=kind, namespaced=False, verbs={"get", "list", "watch"})


class ClusterEmulator(km.KubernetesEmulator):
    """kmock's emulator plus the API server and KServe behaviour described in the module doc."""

    kserve: KServe | None
    admission: list[Any]

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._serial = itertools.count(1)
        self._applied: dict[tuple[Any, ...], dict] = {}
        self._controllers: set[asyncio.Task[None]] = set()
        self.kserve = None
        #: Extra admission checks: callables (resource plural, new, old) -> error message or None.
        self.admission = []
        self._written: dict = {}
        self._deleted: dict = {}
        self._builtin_reactions = len(self._payloads)

    # -- helpers usable by tests ---------------------------------------------------------------

    def live(self, resource: str, namespace: str | None, name: str) -> dict | None:
        key = (km.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(dict(self.objects[key].raw))

    def all_live(self, resource: str) -> list[dict]:
        res = km.resource(resource)
        return [copy.deepcopy(dict(obj.raw)) for (r, _, _), obj in self.objects.items() if r == res and not obj.deleted]

    async def settle(self) -> None:
        """Wait for the emulated controllers' reactions to finish."""
        while self._controllers:
            await asyncio.gather(*list(self._controllers), return_exceptions=True)

    async def put(self, resource: str, obj: dict) -> dict:
        """Store ``obj`` as another client would (no admission): for fixtures and KServe's part."""
        meta = obj["metadata"]
        key = (km.resource(resource), meta.get("namespace"), meta["name"])
        async with self._lock:
            old = self._current(key)
            new = copy.deepcopy(obj)
            self._meta(new, old)
            await self._store(key, old, new)
        return new

    # -- request handling -------------------------------------------------------------------

    def _current(self, key: tuple[Any, ...]) -> dict | None:
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(dict(self._objects[key].raw))

    def _meta(self, new: dict, old: dict | None) -> None:
        meta = new.setdefault("metadata", {})
        if old is None:
            meta["uid"] = f"uid-{next(self._serial)}"  # the server's, whatever the client sent
            meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta["generation"] = 1
        else:
            for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "resourceVersion"):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
                else:
                    meta.pop(field, None)

            def body(o: dict) -> dict:
                return {k: v for k, v in o.items() if k not in ("metadata", "status")}

            if body(new) != body(old):
                meta["generation"] = int(old["metadata"].get("generation") or 1) + 1

    async def _store(self, key: tuple[Any, ...], old: dict | None, new: dict) -> None:
        """Store (under the lock): bump resourceVersion only when something changed."""
        if old is not None:
            stripped_old = {**old, "metadata": {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}}
            stripped_new = {**new, "metadata": {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}}
            if stripped_old == stripped_new:
                new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
                return
        new["metadata"]["resourceVersion"] = str(next(self._serial))
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._objects[key].delete()
            await self._buses[key[0]].put({"type": "DELETED", "object": new})
            self._gc_later()
            return
        if key in self._objects:
            self._objects[key].create(new)
        else:
            self._objects[key] = new
        await self._buses[key[0]].put({"type": "MODIFIED" if old else "ADDED", "object": new})

    def _reactions_added(self) -> bool:
        """A test added reactions (injected failures): kmock must match every request."""
        return len(self._payloads) != self._builtin_reactions

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        """API requests are answered here; kmock's own matching (its reactions scan the whole
        request history, which makes long tests quadratic) only runs when a test added
        reactions, or for discovery and watches."""
        if request.resource is None or not request.resource.plural:  # discovery
            return await super()._handle(request)
        fast = not self._reactions_added()
        if request.action == km.action.LIST and (fast or request.params.get("labelSelector")):
            return await self._list(request)
        if request.action == km.action.FETCH and fast:
            async with self._lock:
                found = self._current((request.resource, request.namespace, request.name))
            if found is None:
                return _status(404, "NotFound", f'{request.resource.plural} "{request.name}" not found')
            return aiohttp.web.json_response(found)
        if request.action in (km.action.CREATE, km.action.UPDATE):
            rejected = await self._write(request)
            if isinstance(rejected, aiohttp.web.StreamResponse):
                return rejected
            if fast:
                return aiohttp.web.json_response(self._written)
            # Reactions (injected failures) and kmock's fallback answer, after the store.
            return await super(km_k8s.KubernetesEmulator, self)._handle(rejected)
        if request.action == km.action.DELETE and request.name is not None:
            gone = await self._delete(request)
            if gone is not None:
                return gone
            if fast:
                return aiohttp.web.json_response(self._deleted)
            return await super(km_k8s.KubernetesEmulator, self)._handle(request)
        return await super()._handle(request)

    async def _delete(self, request: Any) -> aiohttp.web.StreamResponse | None:
        """Delete: mark it (deletionTimestamp) while finalizers remain, else remove it and
        collect its dependents."""
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            old = self._current(key)
            if old is None:
                return _status(404, "NotFound", f'{request.resource.plural} "{request.name}" not found')
            self._deleted = old
            if old["metadata"].get("finalizers"):
                if not old["metadata"].get("deletionTimestamp"):
                    new = copy.deepcopy(old)
                    new["metadata"]["deletionTimestamp"] = datetime.datetime.now(datetime.UTC).isoformat()
                    await self._store(key, old, new)
                    self._deleted = new
                return None
            self._objects[key].delete()
            await self._buses[key[0]].put({"type": "DELETED", "object": old})
        self._gc_later()
        return None

    async def _list(self, request: Any) -> aiohttp.web.StreamResponse:
        selector = request.params.get("labelSelector") or ""
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        items = []
        async with self._lock:
            for (res, ns, _), obj in self._objects.items():
                if res != request.resource or obj.deleted or (request.namespace and ns != request.namespace):
                    continue
                labels = (obj.raw.get("metadata") or {}).get("labels") or {}
                if all(labels.get(k) == v for k, v in wanted.items()):
                    items.append(dict(obj.raw))
        return aiohttp.web.json_response({"metadata": {"resourceVersion": "..."}, "items": items})

    async def _write(self, request: Any) -> Any:
        """Compute and store the new object; a Response when refused, else the request to pass
        on (a CREATE of the stored object, or an UPDATE whose fallback answers it)."""
        plural = request.resource.plural
        data = request.data
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        manager = request.params.get(FIELD_MANAGERS_PARAM, "unknown")
        async with self._lock:
            if request.action == km.action.CREATE:
                meta = (data or {}).get("metadata") or {}
                key = (request.resource, request.namespace or meta.get("namespace"), meta.get("name"))
                if not meta.get("name") and meta.get("generateName"):
                    key = (key[0], key[1], f"{meta['generateName']}{next(self._serial):05d}")
                    data["metadata"]["name"] = key[2]  # kmock's create fallback finds it by this name
                old = self._current(key)
                if old is not None:
                    return _status(409, "AlreadyExists", f'{plural} "{key[2]}" already exists')
                new = copy.deepcopy(data)
                creating = True
            else:
                key = (request.resource, request.namespace, request.name)
                old = self._current(key)
                if old is None and content_type != APPLY:
                    return _status(404, "NotFound", f'{plural} "{request.name}" not found')
                creating = old is None
                if content_type == APPLY:
                    new = self._apply(key, manager, old, data)
                elif content_type == JSONPATCH or isinstance(data, list):
                    for op in data:
                        if op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion":
                            if op.get("value") != old["metadata"].get("resourceVersion"):
                                # A failed JSON-patch test is 422 Invalid (kopf counts on that).
                                return _status(422, "Invalid", "the server rejected our request: test failed")
                    new = jsonpatch.apply_patch(old, [o for o in data if o.get("op") != "test"])
                else:
                    new = _rfc7386(old, data)
            if plural in STATUS_KINDS and old is not None:
                if request.subresource == "status":
                    new = {**old, "status": new.get("status")}
                    if new["status"] is None:
                        new.pop("status")
                else:
                    new = {k: v for k, v in new.items() if k != "status"}
                    if "status" in old:
                        new["status"] = old["status"]
            elif plural in STATUS_KINDS and creating:
                new.pop("status", None)
            if key[1] is not None:
                new.setdefault("metadata", {})["namespace"] = key[1]
            new["metadata"]["name"] = key[2]
            problem, new = self._admit(plural, new, old)
            if problem is not None:
                code, reason, message = problem
                return _status(code, reason, message)
            self._meta(new, old)
            await self._store(key, old, new)
            self._written = new
        if plural == KServe.ISVC and self.kserve is not None:
            self._react(key)
        # kmock's fallbacks answer with the stored object; its reactions (injected failures) only
        # see the very request object it recorded, so that one is passed on.
        return request

    def _apply(self, key: tuple[Any, ...], manager: str, old: dict | None, body: dict) -> dict:
        """Server-side apply for one manager: merge, lists atomic, fields it dropped removed."""
        previous = self._applied.get((*key, manager))
        new = copy.deepcopy(old) if old is not None else {}
        if previous is not None:
            for path in _leaves(previous) - _leaves(body):
                _remove(new, path)
            new = _prune_empty(new)
        self._applied[(*key, manager)] = copy.deepcopy(body)
        return _merge_atomic(new, body)

    def _admit(self, plural: str, new: dict, old: dict | None) -> tuple[tuple[int, str, str] | None, dict]:
        from admission import default_and_validate

        for check in self.admission:
            message = check(plural, new, old)
            if message:
                return (400, "BadRequest", message), new
        if plural == KServe.ISVC and self.kserve is not None:
            new = self.kserve.mutate(new)
        new, problem = default_and_validate(plural, new, old)
        if problem:
            return (422, "Invalid", problem), new
        if plural == KServe.ISVC and self.kserve is not None:
            message = self.kserve.validate(new, old)
            if message:
                webhook = "inferenceservice.kserve-webhook-server.validator"
                return (400, "BadRequest", f'admission webhook "{webhook}" denied the request: {message}'), new
        return None, new

    # -- KServe's controller ----------------------------------------------------------------

    def _react(self, key: tuple[Any, ...]) -> None:
        task = asyncio.get_running_loop().create_task(self._kserve_controller(key))
        self._controllers.add(task)
        task.add_done_callback(self._controllers.discard)

    async def _kserve_controller(self, key: tuple[Any, ...]) -> None:
        """One reconcile of an InferenceService by KServe's controller (what the operator sees)."""
        await asyncio.sleep(0)
        assert self.kserve is not None
        isvc = self.live("serving.kserve.io/v1beta1/inferenceservices", key[1], key[2])
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return
        mode = self.kserve.status_mode(isvc)
        if (isvc.get("status") or {}).get("deploymentMode") != mode:
            # updateStatus records the mode the controller used.
            async with self._lock:
                old = self._current(key)
                if old is not None:
                    new = copy.deepcopy(old)
                    new.setdefault("status", {})["deploymentMode"] = mode
                    await self._store(key, old, new)
        failure = self.kserve.runtime_failure(isvc)
        model_status = (isvc.get("status") or {}).get("modelStatus") or {}
        if failure and model_status.get("lastFailureInfo") != failure:
            async with self._lock:
                old = self._current(key)
                if old is not None:
                    new = copy.deepcopy(old)
                    new.setdefault("status", {})["modelStatus"] = {
                        "transitionStatus": "InvalidSpec",
                        "modelRevisionStates": {"targetModelState": "FailedToLoad"},
                        "lastFailureInfo": failure,
                    }
                    await self._store(key, old, new)
            return  # the predictor reconciler returns the error: no Deployment is made
        problem = self.kserve.deployment_problem(isvc)
        if problem:
            await self.post_event(isvc, "Warning", "InternalError", f"fails to reconcile predictor: {problem}")
        for route in self.kserve.routes(isvc):
            resource = (
                "networking.k8s.io/v1/ingresses"
                if route["kind"] == "Ingress"
                else ("gateway.networking.k8s.io/v1/httproutes")
            )
            if self.live(resource, route["metadata"]["namespace"], route["metadata"]["name"]) is None:
                await self.put(resource, route)

    async def post_event(self, involved: dict, type_: str, reason: str, message: str) -> None:
        meta = involved["metadata"]
        name = f"{meta['name']}.{next(self._serial):x}"
        await self.put(
            "v1/events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": meta["namespace"]},
                "involvedObject": {
                    "apiVersion": involved["apiVersion"],
                    "kind": involved["kind"],
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta.get("uid"),
                },
                "type": type_,
                "reason": reason,
                "message": message,
                "lastTimestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )

    # -- garbage collection -------------------------------------------------------------------

    def _gc_later(self) -> None:
        task = asyncio.get_running_loop().create_task(self._gc())
        self._controllers.add(task)
        task.add_done_callback(self._controllers.discard)

    async def _gc(self) -> None:
        """Delete objects all of whose owners are gone (background propagation)."""
        while True:
            async with self._lock:
                uids = {(obj.raw.get("metadata") or {}).get("uid") for obj in self._objects.values() if not obj.deleted}
                orphans = [
                    key
                    for key, obj in self._objects.items()
                    if not obj.deleted
                    and (refs := (obj.raw.get("metadata") or {}).get("ownerReferences"))
                    and all(ref.get("uid") not in uids for ref in refs)
                ]
                for key in orphans:
                    old = self._current(key)
                    assert old is not None
                    if old["metadata"].get("finalizers"):
                        if not old["metadata"].get("deletionTimestamp"):
                            new = copy.deepcopy(old)
                            new["metadata"]["deletionTimestamp"] = datetime.datetime.now(datetime.UTC).isoformat()
                            await self._store(key, old, new)
                        continue
                    self._objects[key].delete()
                    await self._buses[key[0]].put({"type": "DELETED", "object": old})
            if not orphans:
                return


def _merge_atomic(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    out = dict(target)
    for key, value in patch.items():
        out[key] = _merge_atomic(out.get(key), value)
    return out
