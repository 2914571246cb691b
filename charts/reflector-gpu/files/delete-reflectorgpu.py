# Pre-delete hook (templates/uninstall-hook.yaml): delete the chart's ReflectorGPU while the
# operator still runs, and wait until the operator has removed its children and its finalizer.
# Without this, `helm uninstall` deletes the operator first (Helm removes custom kinds last) and the
# ReflectorGPU would hang in Terminating. Runs in the operator image (the kubernetes client).
# Usage: python delete-reflectorgpu.py <namespace> <name> <timeout seconds>
import os
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main(namespace: str, name: str, timeout: float) -> int:
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    ref = ("reflector.monadical.com", "v1alpha1", namespace, "reflectorgpus", name)
    try:
        api.delete_namespaced_custom_object(*ref)
    except ApiException as exc:
        if exc.status != 404:
            raise
        print(f"ReflectorGPU {namespace}/{name} is already gone")
        return 0
    print(f"deleting ReflectorGPU {namespace}/{name}; waiting up to {timeout:.0f}s for the operator")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get_namespaced_custom_object(*ref)
        except ApiException as exc:
            if exc.status == 404:
                print(f"ReflectorGPU {namespace}/{name} deleted")
                return 0
            raise
        time.sleep(2)
    print(
        f"ReflectorGPU {namespace}/{name} still exists after {timeout:.0f}s: is the operator running? "
        "(kubectl describe it; `helm uninstall --no-hooks` skips this wait)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
