#!/usr/bin/env bash
# Build the container images with Docker when an engine runs, with buildah otherwise.
#
#   images/build.sh [--standin] [NAME ...]     # NAME: see IMAGES below; none = all of them
#
# Images are tagged <REGISTRY>/reflector-gpu-<name>:<TAG> (the names the operator and the chart
# default to). With --standin (what `make images-smoke` does, where no base image can be pulled)
# they are built FROM the local stand-in bases of images/standin-base.sh, with buildah, and
# tagged localhost/reflector-gpu-<name>:standin instead, so a stand-in build is never pushed by
# mistake under a release name.
#
# Settings (environment):
#   REGISTRY, TAG       image names (make passes them; defaults ghcr.io/monadical-sas, dev)
#   IMAGE_BUILDER       auto (default: docker if `docker info` works, else buildah), docker, buildah
#   TORCH_FIND_LINKS    where pip finds torch for the torch images: a URL of wheels (e.g. the
#                       PyTorch CPU index page https://download.pytorch.org/whl/cpu/torch/), or,
#                       with buildah, a directory of wheels on this machine (mounted read-only
#                       into the build, never copied into an image). Empty: PyPI's (CUDA) torch.
#   BUILD_CA_BUNDLE     CA bundle pip must trust inside the build (a TLS-intercepting proxy);
#                       buildah mounts it read-only at /run/build-ca/ca.crt and points PIP_CERT at
#                       it for the build stage only: it is never copied into an image.
#   PYTHON_IMAGE, CUDA_IMAGE   override the base images (the Dockerfiles' build arguments)
#   BUILD_REPORT        file to append "name<TAB>seconds<TAB>size" to for each image built
export ME=images/build.sh  # die() prefix (images/lib.sh)
# shellcheck source=images/lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# name | Dockerfile | build arguments. The single list of images: `make images` builds all of
# them, tests/test_images.py checks each against pyproject's extras and console scripts.
IMAGES=(
    "operator|cpu|EXTRA=operator COMMAND=rgpu-operator"
    "padding|cpu|EXTRA=padding COMMAND=rgpu-padding"
    "whisper|gpu|EXTRA=whisper PREDICTOR=whisper INSTALL_TORCH=false"
    "llm|gpu|EXTRA=llm PREDICTOR=llm INSTALL_TORCH=true"
    "translator|gpu|EXTRA=translator PREDICTOR=translator INSTALL_TORCH=true"
    "diarizer|gpu|EXTRA=diarizer PREDICTOR=diarizer INSTALL_TORCH=true"
    "parakeet|gpu|EXTRA=parakeet PREDICTOR=parakeet INSTALL_TORCH=true"
)
STANDIN_PYTHON=localhost/reflector-gpu-standin:python3.11-slim
STANDIN_CUDA=localhost/reflector-gpu-standin:cuda-runtime


STANDIN=0
names=()
for arg in "$@"; do
    case "$arg" in
        --standin) STANDIN=1 ;;
        -h | --help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $arg (--help)" ;;
        *) names+=("$arg") ;;
    esac
done
known=()
for spec in "${IMAGES[@]}"; do known+=("${spec%%|*}"); done
[ "${#names[@]}" -gt 0 ] || names=("${known[@]}")
for name in "${names[@]}"; do
    [[ " ${known[*]} " == *" $name "* ]] || die "unknown image '$name' (known: ${known[*]})"
done

BUILDER="${IMAGE_BUILDER:-auto}"
if [ "$BUILDER" = auto ]; then
    if [ "$STANDIN" = 0 ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        BUILDER=docker
    elif command -v buildah >/dev/null; then
        BUILDER=buildah
    else
        die "no Docker engine (docker info failed) and no buildah: install one (Debian/Ubuntu: apt-get install buildah)"
    fi
fi
case "$BUILDER" in
    docker | buildah) command -v "$BUILDER" >/dev/null || die "$BUILDER is not installed" ;;
    *) die "IMAGE_BUILDER must be auto, docker or buildah, not '$BUILDER'" ;;
esac
[ "$STANDIN" = 0 ] || [ "$BUILDER" = buildah ] || die "--standin builds with buildah (the stand-in bases live in its storage)"
[ "$BUILDER" = docker ] || [ "$(id -u)" = 0 ] || die "buildah builds here run as root (chroot isolation)"

REGISTRY="${REGISTRY:-ghcr.io/monadical-sas}"
TAG="${TAG:-dev}"
common=()
mounts=()
if [ "$STANDIN" = 1 ]; then
    for base in "$STANDIN_PYTHON" "$STANDIN_CUDA"; do
        buildah inspect --type image "$base" >/dev/null 2>&1 || die "no stand-in base $base: run images/standin-base.sh"
    done
    PYTHON_IMAGE="${PYTHON_IMAGE:-$STANDIN_PYTHON}"
    CUDA_IMAGE="${CUDA_IMAGE:-$STANDIN_CUDA}"
    common+=(--pull=never)
fi

torch_args=()
if [ -n "${TORCH_FIND_LINKS:-}" ]; then
    if [ -d "$TORCH_FIND_LINKS" ]; then
        [ "$BUILDER" = buildah ] || die "TORCH_FIND_LINKS=$TORCH_FIND_LINKS is a directory: only buildah can mount it (Docker: use a URL)"
        torch_args+=(--volume "$(cd "$TORCH_FIND_LINKS" && pwd):/run/torch-wheels:ro")
        torch_args+=(--build-arg TORCH_FIND_LINKS=/run/torch-wheels)
    elif [[ "$TORCH_FIND_LINKS" == http://* || "$TORCH_FIND_LINKS" == https://* ]]; then
        torch_args+=(--build-arg "TORCH_FIND_LINKS=$TORCH_FIND_LINKS")
    else
        die "TORCH_FIND_LINKS=$TORCH_FIND_LINKS is neither a directory nor an http(s) URL"
    fi
fi
if [ -n "${BUILD_CA_BUNDLE:-}" ]; then
    [ -s "$BUILD_CA_BUNDLE" ] || die "BUILD_CA_BUNDLE=$BUILD_CA_BUNDLE is not a readable file"
    [ "$BUILDER" = buildah ] || die "BUILD_CA_BUNDLE needs buildah (Docker: configure the proxy's CA in the engine)"
    mounts+=(--volume "$(realpath "$BUILD_CA_BUNDLE"):/run/build-ca/ca.crt:ro")
    common+=(--build-arg PIP_CERT=/run/build-ca/ca.crt)
fi

image_size() {  # as the builder prints it (uncompressed, e.g. "1.23 GB")
    if [ "$BUILDER" = docker ]; then
        docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1 / 1e6}'
    else
        buildah images --format '{{.Size}}' "$1"
    fi
}

for name in "${names[@]}"; do
    for spec in "${IMAGES[@]}"; do [ "${spec%%|*}" = "$name" ] && break; done
    IFS='|' read -r _ kind args <<<"$spec"
    if [ "$STANDIN" = 1 ]; then image="localhost/reflector-gpu-$name:standin"; else image="$REGISTRY/reflector-gpu-$name:$TAG"; fi
    build_args=()
    for a in $args; do build_args+=(--build-arg "$a"); done
    # the base each Dockerfile takes (an argument the other one lacks would only draw a warning)
    if [ "$kind" = cpu ] && [ -n "${PYTHON_IMAGE:-}" ]; then build_args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"); fi
    if [ "$kind" = gpu ] && [ -n "${CUDA_IMAGE:-}" ]; then build_args+=(--build-arg "CUDA_IMAGE=$CUDA_IMAGE"); fi
    [[ " $args " != *" INSTALL_TORCH=true "* ]] || build_args+=("${torch_args[@]}")
    echo "== $image  ($kind.Dockerfile: $args)"
    start=$SECONDS
    if [ "$BUILDER" = docker ]; then
        docker build -f "images/$kind.Dockerfile" "${common[@]}" "${build_args[@]}" -t "$image" .
    else
        buildah bud --isolation chroot --layers "${mounts[@]}" -f "images/$kind.Dockerfile" \
            "${common[@]}" "${build_args[@]}" -t "$image" .
    fi
    seconds=$((SECONDS - start))
    size="$(image_size "$image")"
    echo "== $image: built in ${seconds} s, $size"
    [ -z "${BUILD_REPORT:-}" ] || printf '%s\t%s\t%s\n' "$name" "$seconds" "$size" >>"$BUILD_REPORT"
done
