# shellcheck shell=bash
# Sourced by the image scripts and e2e/run.sh: strict mode, the repository root as the working
# directory, the torch version the images install, and die() prefixed with the caller's ME.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
export ROOT TORCH_VERSION
die() { echo "${ME:-$0}: $*" >&2; exit 1; }
