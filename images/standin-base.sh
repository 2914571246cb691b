#!/usr/bin/env bash
# Stand-in base images for building and starting the images where no registry can be reached
# (CI here): a Debian 12 root filesystem from debootstrap, imported into buildah's storage.
#
#   images/standin-base.sh            # make both stand-ins unless buildah already has them
#   images/standin-base.sh --rebuild  # make them again from nothing
#
# It makes two local images, each cached in buildah's storage (and the debootstrap tarball in
# .cache/images/), so only the first run pays for debootstrap:
#
#   localhost/reflector-gpu-standin:cuda-runtime    stand-in for nvidia/cuda:*-cudnn-runtime-ubuntu24.04
#       minbase + ca-certificates. The real base is Ubuntu 24.04 (Python 3.12 from apt) with CUDA
#       and cuDNN; the stand-in has neither CUDA nor cuDNN and gives Python 3.11 (images/README.md).
#   localhost/reflector-gpu-standin:python3.11-slim stand-in for python:3.11-slim-bookworm
#       minbase + what that image adds to Debian: ca-certificates netbase tzdata (its own apt
#       line), a Python 3.11 with venv/ensurepip (python3 python3-venv; the real one is CPython
#       built into /usr/local) and the `python` command (python-is-python3), LANG=C.UTF-8.
#
# Both also carry the Docker images' dpkg excludes (no docs, man pages or locales) and apt
# settings (no package caches, no translations), as debian:bookworm-slim and ubuntu:24.04 do.
# Nothing of this machine (CA bundle, pip or apt configuration) goes into them.
#
# Needs root, debootstrap and buildah (Debian: apt-get install debootstrap buildah).
# Settings (environment): STANDIN_MIRROR (default http://deb.debian.org/debian),
# STANDIN_CACHE (default .cache/images), BUILDAH (default buildah).
export ME=standin-base  # die() prefix (images/lib.sh)
# shellcheck source=images/lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MIRROR="${STANDIN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${STANDIN_CACHE:-$ROOT/.cache/images}"
BUILDAH="${BUILDAH:-buildah}"
SUITE=bookworm
CUDA_STANDIN=localhost/reflector-gpu-standin:cuda-runtime
PYTHON_STANDIN=localhost/reflector-gpu-standin:python3.11-slim
TARBALL="$CACHE/debian-$SUITE-minbase.tar"

log() { echo "== standin-base: $*"; }

REBUILD=0
case "${1:-}" in
    --rebuild) REBUILD=1 ;;
    "") ;;
    *) die "usage: $0 [--rebuild]" ;;
esac

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and buildah's chroot isolation)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v "$BUILDAH" >/dev/null || die "buildah is not installed (apt-get install buildah)"

have_image() { "$BUILDAH" inspect --type image "$1" >/dev/null 2>&1; }

if [ "$REBUILD" = 0 ] && have_image "$CUDA_STANDIN" && have_image "$PYTHON_STANDIN"; then
    log "cached: $CUDA_STANDIN, $PYTHON_STANDIN (--rebuild to make them again)"
    exit 0
fi

start=$SECONDS
mkdir -p "$CACHE"
if [ "$REBUILD" = 1 ] || [ ! -s "$TARBALL" ]; then
    rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    log "debootstrap --variant=minbase $SUITE from $MIRROR"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    # As in Docker's debian/ubuntu images: no docs, man pages or translations from later installs.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    # ... and no apt caches, as their /etc/apt/apt.conf.d/docker-clean and docker-no-languages say.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    # What those excludes would have kept out of the packages debootstrap already installed.
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian/*
    # Images carry no apt lists or downloaded packages; installs run `apt-get update` first.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/log/*.log
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$rootfs"
    trap - EXIT
    log "root filesystem: $(du -h "$TARBALL" | cut -f1) in $((SECONDS - start)) s"
else
    log "root filesystem from $TARBALL"
fi

# One working container per stand-in; removed whatever happens.
containers=()
cleanup() { for c in "${containers[@]}"; do "$BUILDAH" rm "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

# apt inside the stand-in, as the real images do it (no recommends, lists removed afterwards).
apt_install() {
    local c="$1"
    shift
    "$BUILDAH" run --isolation chroot "$c" -- sh -c \
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
         && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log' apt "$@"
}

log "$CUDA_STANDIN"
c="$("$BUILDAH" from --pull-never scratch)"
containers+=("$c")
"$BUILDAH" add "$c" "$TARBALL" / >/dev/null
apt_install "$c" ca-certificates
"$BUILDAH" config --cmd /bin/bash \
    --label org.opencontainers.image.description="reflector-gpu stand-in for nvidia/cuda:*-cudnn-runtime-ubuntu24.04 (Debian 12 minbase, no CUDA)" \
    "$c"
"$BUILDAH" commit --quiet --rm "$c" "$CUDA_STANDIN" >/dev/null
containers=()

log "$PYTHON_STANDIN"
c="$("$BUILDAH" from --pull-never "$CUDA_STANDIN")"
containers+=("$c")
apt_install "$c" netbase tzdata python3 python3-venv python-is-python3
"$BUILDAH" config --env LANG=C.UTF-8 --cmd python3 \
    --label org.opencontainers.image.description="reflector-gpu stand-in for python:3.11-slim-bookworm (Debian 12 minbase + python3)" \
    "$c"
"$BUILDAH" commit --quiet --rm "$c" "$PYTHON_STANDIN" >/dev/null
containers=()

log "done in $((SECONDS - start)) s"
"$BUILDAH" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep reflector-gpu-standin
