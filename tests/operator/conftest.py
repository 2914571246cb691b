"""Operator test setup: import paths and the resync interval (helpers: operator_support.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The operator and the contract are installed by `pip install -e .[operator]`; fall back to the
# source tree so the suite also runs from a bare checkout.
for sub in ("operator", "predictors"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

# The resync timer's interval is fixed when the handlers module is imported: make it short
# for the emulator tests (production default: 300 s).
os.environ.setdefault("RGPU_OPERATOR_RESYNC_SECONDS", "1")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "kserve(version, **options): the KServe version the emulated cluster runs (tests/operator/cluster.py)",
    )


# cel-python logs every evaluation step at DEBUG; the operator tests capture DEBUG logs.
import logging  # noqa: E402

logging.getLogger("celpy").setLevel(logging.WARNING)

# The emulated cluster's fixtures (emu, predictors, running) for every operator test module; kmock
# is a dev dependency: the modules that need it skip without it (importorskip).
try:
    from emulated import emu, predictors, running  # noqa: E402, F401
except ImportError:  # pragma: no cover - kmock not installed
    pass
