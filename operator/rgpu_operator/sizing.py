"""Resource requests and limits for every predictor container, sized per component.

KServe's webhook fills every CPU or memory request or limit a custom predictor's first
container lacks from ``inferenceservice-config`` (1 CPU / 2Gi; ``setResourceRequirementDefaults``
in ``inference_service_defaults.go``, called by ``CustomPredictor.Default`` in
``predictor_custom.go``). A container with only requests then gets limits below them and the
API server refuses its Deployment; one left at 2Gi is OOM-killed. So the operator always writes
all four, from the table below merged with the CR's overrides:

- an override of a request alone raises the default limit to it when it is larger, an override
  of a limit alone lowers the default request to it when it is smaller;
- a CR that sets both with the request above the limit is refused (:func:`problems`).

``/tmp`` (uploads and downloads are spooled there, and ``HOME`` points there, so hub downloads
land there too) is an emptyDir with a ``sizeLimit``; the pod requests that much
``ephemeral-storage`` plus the model volume KServe's storage initializer fills.

The figures are estimates from the models' published sizes and the predictors' data flow (see
docs/operator.md, "Sizing"); they are not measured on a GPU here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import quantity
from .components import Component

#: Resources the user may size (GPUs come from the pool).
SIZED = ("cpu", "memory", "ephemeral-storage")
GIB = Decimal(2) ** 30
MIB = Decimal(2) ** 20
#: Room for everything else in /tmp (logs of native libraries, small caches).
TMP_HEADROOM_GI = 1


@dataclass(frozen=True)
class Size:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    #: Model files on the node's disk (hub cache in /tmp, or KServe's model volume), GiB.
    model_disk_gi: int
    #: Which file cap bounds each in-flight request's spool file: upload, download or none.
    spools: str
    #: Spool files per in-flight request (padding keeps the track and its padded copy).
    files_per_request: int
    footprint: str  #: docs: what the model and runtime take
    peak: str  #: docs: the peak on a 4-hour recording


SIZES: dict[str, Size] = {
    "transcriber-live": Size(
        "2",
        "4",
        "8Gi",
        "12Gi",
        4,
        "upload",
        1,
        "Parakeet TDT 0.6B: 2.4 GB fp32 while NeMo restores it; Whisper large-v3: 3.1 GB; runtime ~3 GB",
        "short clips only: a batch of 10 adds < 1 GB",
    ),
    "transcriber-file": Size(
        "4",
        "8",
        "16Gi",
        "24Gi",
        4,
        "download",
        1,
        "as live",
        "4 h at 16 kHz float32 is 0.92 GB; decoded and resampled copies, VAD chunks and batches: ~9 GB",
    ),
    "diarizer": Size(
        "4",
        "8",
        "16Gi",
        "32Gi",
        1,
        "download",
        1,
        "pyannote segmentation + embedding: < 100 MB of weights; runtime ~2.5 GB",
        "0.92 GB waveform, ~14k 10 s chunks of segmentation scores and embeddings, clustering: up to ~12 GB",
    ),
    "translator": Size(
        "2",
        "4",
        "8Gi",
        "12Gi",
        6,
        "none",
        0,
        "NLLB-200 distilled 600M: 2.5 GB fp32 while loading; m2m100 418M: 1.9 GB; runtime ~3 GB",
        "text only: bounded by the 200k-character request limit",
    ),
    "llm": Size(
        "4",
        "8",
        "16Gi",
        "32Gi",
        32,
        "none",
        0,
        "weights go to the GPU; host memory holds one safetensors shard at a time (~5 GB); runtime ~3 GB",
        "prompts are text: a 16k-token context is a few MB",
    ),
    "padding": Size(
        "1",
        "2",
        "1Gi",
        "2Gi",
        0,
        "download",
        2,
        "no model; PyAV with libopus",
        "streams the track: ~300 MB; spools the track and its padded copy",
    ),
}


def cap_bytes(spec: dict[str, Any], which: str) -> Decimal:
    """The upload or download cap, in bytes (0 for ``none``)."""
    if which == "none":
        return Decimal(0)
    return quantity.parse(spec["files"]["maxUpload" if which == "upload" else "maxDownload"])


def cap_mb(spec: dict[str, Any], which: str) -> str:
    """The cap as the predictors' MiB setting."""
    return str(int(cap_bytes(spec, which) / MIB))


def _ceil_gi(value: Decimal) -> int:
    whole = int(value / GIB)
    return whole if whole * GIB >= value else whole + 1


def tmp_size_gi(spec: dict[str, Any], component: Component, block: dict[str, Any], model_on_node: bool) -> int:
    """The /tmp emptyDir: every in-flight request's spool files at the cap (queued requests
    have not read their body yet), the hub cache when the
    model is downloaded by the predictor itself, and headroom."""
    size = SIZES[component.name]
    spool = cap_bytes(spec, size.spools) * size.files_per_request * int(block["maxInFlight"])
    model = size.model_disk_gi if model_on_node else 0
    return _ceil_gi(spool) + model + TMP_HEADROOM_GI


def _override(block: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    res = block.get("resources") or {}
    return dict(res.get("requests") or {}), dict(res.get("limits") or {})


def resources(
    spec: dict[str, Any], component: Component, block: dict[str, Any], tmp_gi: int, model_volume_gi: int
) -> dict[str, dict[str, str]]:
    """Requests and limits (cpu, memory, ephemeral-storage) for the predictor container, GPUs
    not included. Assumes :func:`problems` found nothing."""
    size = SIZES[component.name]
    want_req, want_lim = _override(block)
    requests = {"cpu": size.cpu_request, "memory": size.memory_request}
    limits = {"cpu": size.cpu_limit, "memory": size.memory_limit}
    for name in ("cpu", "memory"):
        req, lim = want_req.get(name), want_lim.get(name)
        if req is not None:
            requests[name] = str(req)
            if lim is None and quantity.parse(req) > quantity.parse(limits[name]):
                limits[name] = str(req)
        if lim is not None:
            limits[name] = str(lim)
            if req is None and quantity.parse(lim) < quantity.parse(requests[name]):
                requests[name] = str(lim)
    storage = want_req.get("ephemeral-storage")
    requests["ephemeral-storage"] = str(storage) if storage is not None else quantity.gib(tmp_gi + model_volume_gi)
    if "ephemeral-storage" in want_lim:
        limits["ephemeral-storage"] = str(want_lim["ephemeral-storage"])
    return {
        "requests": {k: quantity.canonical(v) for k, v in requests.items()},
        "limits": {k: quantity.canonical(v) for k, v in limits.items()},
    }


def problems(component: Component, block: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for overrides the API server would refuse in the Deployment: a
    request above its limit, both given by the CR (``ValidateResourceRequirements``)."""
    want_req, want_lim = _override(block)
    out = []
    for name in sorted(set(want_req) & set(want_lim)):
        if quantity.parse(want_req[name]) > quantity.parse(want_lim[name]):
            out.append(
                (
                    f"{component.path}.resources.requests.{name}",
                    f"request {want_req[name]} is above the limit {want_lim[name]} (requests must be <= limits)",
                )
            )
    return out
