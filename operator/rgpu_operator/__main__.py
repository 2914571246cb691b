"""``python -m rgpu_operator``: run the operator (the container's entrypoint)."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import kopf

from . import handlers  # noqa: F401 - registers the handlers
from .peering import kopf_options
from .settings import Settings


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    options = kopf_options(settings, now_s=time.time(), jitter=random.randrange(1000))
    asyncio.run(kopf.operator(**options, liveness_endpoint=liveness))


if __name__ == "__main__":
    main()
