"""Prometheus metrics: per-route request counts and latencies, seconds of audio processed.

Served by KServe's own ``/metrics`` (the default registry) next to KServe's metrics.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
BATCH_SIZE = Histogram(
    "reflector_gpu_batch_items", "Items per model call", ["predictor"], buckets=(1, 2, 4, 8, 16, 32, 64)
)


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
