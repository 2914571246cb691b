"""Prometheus metrics: per-route request counts and latencies, seconds of audio processed,
requests in flight and queued, and how long queued requests waited (:mod:`.admission`).

The default registry (ours next to KServe's own) is served on ``/metrics``: on the API port in the
local mode, or on its own port (``REFLECTOR_GPU_METRICS_PORT``) in the cluster, where a
NetworkPolicy admits the monitoring namespace to that port alone.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client import exposition as _exposition
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import rgpu_contract as contract

REQUESTS = Counter(
    "reflector_gpu_requests_total", "HTTP requests by route, method and status", ["route", "method", "status"]
)
LATENCY = Histogram(
    "reflector_gpu_request_duration_seconds",
    "HTTP request latency by route",
    ["route", "method"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
AUDIO_SECONDS = Counter("reflector_gpu_audio_seconds_total", "Seconds of audio processed", ["predictor", "route"])
#: The admission contract (docs/scaling.md): the operator's KEDA trigger sums these two gauges.
INFLIGHT = Gauge(contract.METRIC_INFLIGHT, "Requests being worked on now, by route", ["route"])
QUEUED = Gauge(contract.METRIC_QUEUED, "Requests waiting for a slot now (FIFO), by route", ["route"])
QUEUE_WAIT = Histogram(
    contract.METRIC_QUEUE_WAIT,
    "Time a request waited for a slot before work started (0 when admitted at once), by route",
    ["route"],
    buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
MODEL_LOAD = Gauge(
    "reflector_gpu_model_load_seconds", "How long the last model load took (also when it failed)", ["predictor"]
)
BATCH_SIZE = Histogram(
    "reflector_gpu_batch_items", "Items per model call", ["predictor"], buckets=(1, 2, 4, 8, 16, 32, 64)
)

#: Realtime WebSocket sessions are long-lived: counted here, not against the HTTP admission limit.
REALTIME_SESSIONS = Gauge("reflector_gpu_realtime_sessions", "Open realtime WebSocket sessions", ["predictor"])

log = logging.getLogger("rgpu.metrics")


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The default registry in the format the scraper asked for."""
    encoder, content_type = _exposition.choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


def serve_metrics(port: int, host: str) -> None:
    """``/metrics`` on its own port, from a daemon thread (prometheus_client's own server)."""
    start_http_server(port, addr=host)
    log.info("metrics on http://%s:%d/metrics", host, port)


def record_audio(predictor: str, route: str, seconds: float) -> None:
    AUDIO_SECONDS.labels(predictor, route).inc(max(0.0, seconds))


class MetricsMiddleware:
    """Counts every HTTP request under its route template (not the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            REQUESTS.labels(template, method, str(status["code"])).inc()
            LATENCY.labels(template, method).observe(time.perf_counter() - started)
