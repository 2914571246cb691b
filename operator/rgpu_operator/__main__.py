"""``rgpu-operator`` / ``python -m rgpu_operator``: run the operator (the container's entrypoint),
or ``render`` the objects it would keep for a ReflectorGPU.

    rgpu-operator [run]
    rgpu-operator render -f reflectorgpu.yaml [--namespace NS] [--kserve-version X.Y]

``render`` reads the same ``RGPU_OPERATOR_*`` settings as the operator (image defaults, edge
preset, monitoring namespaces); exit status 0 rendered, 2 refused (field path and rule on
stderr), 1 unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run() -> None:
    import asyncio
    import logging
    import random
    import time

    import kopf

    from . import handlers  # noqa: F401 - registers the handlers
    from .metrics import serve as serve_metrics
    from .peering import kopf_options
    from .settings import Settings

    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    serve_metrics(settings.metrics_port)
    options = kopf_options(settings, now_s=time.time(), jitter=random.randrange(1000))
    asyncio.run(kopf.operator(**options, liveness_endpoint=liveness))


def render(path: str, namespace: str | None, version: str | None) -> int:
    import yaml

    from .context import Install
    from .gen import HEADER, dump
    from .kserve import LATEST, Version, parse_version
    from .render import Refused, render_all
    from .settings import Settings

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        docs = list(yaml.safe_load_all(text))
        kserve = parse_version(version) if version else Version(*LATEST)
        settings = Settings.from_env()
    except (OSError, yaml.YAMLError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        rendered = render_all(docs, Install.from_settings(settings, kserve), namespace)
    except Refused as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    header = (
        f"# rgpu-operator render (KServe {kserve}): the objects the operator keeps once converged.\n"
        "# The operator owns them: review and diff them, do not commit or apply them.\n"
    )
    out = []
    for item in rendered:
        out.append(dump(*item.objects).replace(HEADER, ""))
    sys.stdout.write(header + "---\n".join(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rgpu-operator", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the operator (the default)")
    r = sub.add_parser("render", help="print the objects the operator keeps for a ReflectorGPU")
    r.add_argument("-f", "--filename", required=True, help="ReflectorGPU manifest (YAML; - for stdin)")
    r.add_argument("-n", "--namespace", help="namespace of the ReflectorGPU (default: its own, else default)")
    r.add_argument("--kserve-version", help="KServe version the objects are for (default: the newest known)")
    args = parser.parse_args(argv)
    if args.command == "render":
        return render(args.filename, args.namespace, args.kserve_version)
    run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
