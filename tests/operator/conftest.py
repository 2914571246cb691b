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
