#!/usr/bin/env bash
# Prove that every GPU image's Python dependencies install on the real GPU base's interpreter,
# from wheels alone: nvidia/cuda:*-ubuntu24.04 gives CPython 3.12 on glibc 2.39, which the
# Debian 12 / Python 3.11 stand-in of `make images-smoke` does not reproduce.
#
#   images/resolve-py312.sh [EXTRA ...]      # default: whisper parakeet diarizer translator llm
#
# For each extra, pip resolves (`install --dry-run`, nothing installed) the image's requirements
# exactly as gpu.Dockerfile installs them (torch==TORCH_VERSION where the image installs torch,
# then `reflector-gpu[EXTRA]` with images/constraints.txt) for --python-version 3.12, the cp312,
# abi3 and none ABIs and every manylinux platform glibc 2.39 runs (pip does not expand
# `--platform manylinux_2_28_x86_64` to older tags by itself), with --only-binary :all:. A
# package without a wheel for that interpreter fails the run. Exceptions: pure-Python
# projects that PyPI has only as sdists (PURE_SDISTS below) are built here into wheels first and
# must come out as py3-none-any; a project that needs a compiler fails.
#
# It reads PyPI only (this machine's pip configuration is ignored) and fetches wheel metadata
# through HTTP range requests (pip's fast-deps), so torch's CUDA wheels are not downloaded.
# Settings: PYTHON (a Python 3.11+ to make the resolver's venv with; default python3),
# TORCH_VERSION (2.13.0), RESOLVER_VENV (.cache/images/resolver), PIP_VERSION (26.3).
export ME=resolve-py312  # die() prefix (images/lib.sh)
# shellcheck source=images/lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PYTHON="${PYTHON:-python3}"
VENV="${RESOLVER_VENV:-$ROOT/.cache/images/resolver}"
PIP_VERSION="${PIP_VERSION:-26.3}"
GLIBC_MINOR=39      # Ubuntu 24.04
# Projects PyPI has no wheel of, at the pinned version, that are pure Python (checked below).
PURE_SDISTS=(antlr4-python3-runtime)

extras=("$@")
[ "${#extras[@]}" -gt 0 ] || extras=(whisper parakeet diarizer translator llm)


# This machine's pip configuration (local wheel directories, a torch cap) is not the GPU
# base's: only PyPI counts. The CA bundle (PIP_CERT) stays, for a TLS-intercepting proxy.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX

# A pip new enough for fast-deps, in a venv of its own (the project's venv is left alone).
if ! "$VENV/bin/python" -m pip --version 2>/dev/null | grep -q "^pip $PIP_VERSION "; then
    "$PYTHON" -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install --quiet "pip==$PIP_VERSION"
fi
pip=("$VENV/bin/python" -m pip)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
wheels="$work/wheels"
mkdir -p "$wheels"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)"

# The project itself, as the images install it (its build's warnings go to the log).
"${pip[@]}" wheel --no-deps --wheel-dir "$wheels" . >"$work/wheels.log" 2>&1 \
    || { cat "$work/wheels.log" >&2; die "building the project's wheel failed"; }
for name in "${PURE_SDISTS[@]}"; do
    pin="$(grep -i -E "^${name}==" images/constraints.txt)" || die "$name is not pinned in images/constraints.txt"
    "${pip[@]}" wheel --no-deps --no-binary :all: --wheel-dir "$wheels" "$pin" >>"$work/wheels.log" 2>&1 \
        || { cat "$work/wheels.log" >&2; die "building $pin from its sdist failed"; }
done
for whl in "$wheels"/*.whl; do
    [[ "$whl" == *-py3-none-any.whl || "$whl" == *-py2.py3-none-any.whl ]] \
        || die "$(basename "$whl") is not pure Python: it needs a wheel for CPython 3.12 on PyPI"
done
echo "== resolve-py312: built here, pure Python: $(cd "$wheels" && echo *.whl)"

platforms=()
for minor in $(seq "$GLIBC_MINOR" -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)

failed=0
for extra in "${extras[@]}"; do
    reqs=("reflector-gpu[$extra]==$version")
    if grep -q "\"$extra|gpu|.*INSTALL_TORCH=true" images/build.sh; then reqs=("torch==$TORCH_VERSION" "${reqs[@]}"); fi
    start=$SECONDS
    if "${pip[@]}" install --dry-run --ignore-installed --target "$work/target" --report "$work/$extra.json" \
        --use-feature=fast-deps --only-binary :all: --python-version 3.12 --implementation cp \
        --abi cp312 --abi abi3 --abi none "${platforms[@]}" --find-links "$wheels" \
        --constraint images/constraints.txt "${reqs[@]}" >"$work/$extra.log" 2>&1; then
        n="$("$VENV/bin/python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["install"]))' "$work/$extra.json")"
        echo "== resolve-py312: $extra: ${reqs[*]} -> $n distributions, all wheels for CPython 3.12 ($((SECONDS - start)) s)"
    else
        echo "== resolve-py312: $extra FAILED:" >&2
        grep -E "^ERROR|conflict|depends on|requested" "$work/$extra.log" | tail -20 >&2
        failed=1
    fi
done
[ "$failed" = 0 ] || die "some GPU extras do not install from wheels on CPython 3.12"
