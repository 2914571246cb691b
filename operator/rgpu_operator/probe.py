"""Ask a not-ready predictor why: GET its per-model readiness route through its Service.

KServe reports a pod that never becomes ready only as an unavailable Deployment; the predictor
itself answers 503 with the reason (``rgpu_contract.MODEL_LOAD_FAILED`` when the load failed).
The route needs no key; the NetworkPolicy admits the operator to it (``operator`` feature).
"""

from __future__ import annotations

import contextlib
import logging

import httpx2

import rgpu_contract as contract

log = logging.getLogger(__name__)
DETAIL_MAX = 1024


async def readiness(base_url: str, model: str, timeout_s: float = 3.0) -> tuple[int, str] | None:
    """(status, detail) of ``<base_url>/v2/models/<model>/ready``; None when nothing answered."""
    url = base_url.rstrip("/") + contract.model_readiness_path(model)
    try:
        async with httpx2.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url)
    except httpx2.HTTPError as exc:
        log.debug("readiness probe %s: %s", url, exc)
        return None
    detail = response.text
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("error") or detail)
    return response.status_code, detail[:DETAIL_MAX]
