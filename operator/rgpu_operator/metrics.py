"""The operator's own Prometheus metrics: reconciles by result, and their durations.

Served by prometheus_client's HTTP server on ``RGPU_OPERATOR_METRICS_PORT`` (8081; 0: off), the
``metrics`` port the chart's PodMonitor scrapes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter, Histogram, start_http_server

#: result: ok (converged or progressing), retry (a child failed transiently), error (an API call
#: failed; kopf retries), gone (the resource was deleted meanwhile).
RECONCILES = Counter("rgpu_operator_reconciles_total", "Reconciles of ReflectorGPUs, by result", ["result"])
DURATION = Histogram(
    "rgpu_operator_reconcile_duration_seconds",
    "How long one reconcile of a ReflectorGPU took",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class Timer:
    result = "ok"


@asynccontextmanager
async def reconciling() -> AsyncIterator[Timer]:
    """Count and time one reconcile; an exception counts as ``error``."""
    timer = Timer()
    started = time.perf_counter()
    try:
        yield timer
    except BaseException:
        timer.result = "error"
        raise
    finally:
        DURATION.observe(time.perf_counter() - started)
        RECONCILES.labels(timer.result).inc()


def serve(port: int) -> None:
    if port:
        start_http_server(port)
