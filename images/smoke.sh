#!/usr/bin/env bash
# `make images-smoke`: build the images from stand-in bases and start them for real, with buildah
# and no Docker engine or registry (images/README.md).
#
#   images/smoke.sh [NAME ...]      # default: operator padding whisper llm
#
#   1. images/resolve-py312.sh: every GPU extra installs from wheels on the real base's Python 3.12
#   2. images/standin-base.sh: the stand-in bases (debootstrap, made once and cached)
#   3. images/build.sh --standin NAME...: the images, timed and sized
#   4. images/smoke.py NAME...: soundness checks and real starts as uid 10001, then the summary
#
# The torch images (llm, translator, diarizer, parakeet) install a CPU build of torch: from
# TORCH_FIND_LINKS when set (a directory or URL of wheels), else the one this machine's pip
# configuration finds locally (`pip download --no-index`); never the CUDA download from PyPI.
# Settings: PYTHON (the project's venv Python, with the dev extra; default .venv/bin/python),
# BUILD_CA_BUNDLE (default: PIP_CERT, else pip's configured `cert`), TORCH_VERSION (2.13.0),
# SMOKE_SKIP_RESOLVE=1 skips step 1.
export ME=images-smoke  # die() prefix (images/lib.sh)
# shellcheck source=images/lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
CACHE="$ROOT/.cache/images"


names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(operator padding whisper llm)
[ -x "$PYTHON" ] || die "$PYTHON not found: run \`make install\` first (or set PYTHON)"
"$PYTHON" -c "import httpx, kmock, av, yaml" 2>/dev/null || die "$PYTHON lacks the dev extra (httpx, kmock, av, pyyaml)"
SMOKE_STARTED_AT="$(date +%s)"  # smoke.py prints the whole run's time in its summary
export SMOKE_STARTED_AT
mkdir -p "$CACHE"

if [ "${SMOKE_SKIP_RESOLVE:-0}" != 1 ]; then
    images/resolve-py312.sh
fi

images/standin-base.sh

torch=0
for name in "${names[@]}"; do
    case "$name" in llm | translator | diarizer | parakeet) torch=1 ;; esac
done
if [ "$torch" = 1 ] && [ -z "${TORCH_FIND_LINKS:-}" ]; then
    wheels="$CACHE/torch-wheels"
    rm -rf "$wheels"
    "$PYTHON" -m pip download --quiet --no-index --no-deps --dest "$wheels" "torch==$TORCH_VERSION" 2>/dev/null \
        || die "no local torch==$TORCH_VERSION wheel (pip's find-links): set TORCH_FIND_LINKS to a directory or URL of CPU wheels (https://download.pytorch.org/whl/cpu/torch/), or leave the torch images out"
    compgen -G "$wheels/torch-$TORCH_VERSION+cpu-*.whl" >/dev/null \
        || die "the local torch wheel is not a CPU build ($(ls "$wheels")): the build would download CUDA"
    TORCH_FIND_LINKS="$wheels"
fi
if [ -z "${BUILD_CA_BUNDLE:-}" ]; then
    BUILD_CA_BUNDLE="${PIP_CERT:-$("$PYTHON" -m pip config get global.cert 2>/dev/null || true)}"
fi

report="$CACHE/build-report.tsv"
rm -f "$report"
BUILD_REPORT="$report" BUILD_CA_BUNDLE="$BUILD_CA_BUNDLE" TORCH_FIND_LINKS="${TORCH_FIND_LINKS:-}" \
    images/build.sh --standin "${names[@]}"

exec "$PYTHON" images/smoke.py --report "$report" "${names[@]}"
