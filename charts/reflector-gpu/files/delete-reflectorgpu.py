# Pre-delete hook (templates/uninstall-hook.yaml): delete the chart's ReflectorGPU while the
# operator still runs, and wait until the operator has removed its children and its finalizer.
# Without this, `helm uninstall` deletes the operator first (Helm removes custom kinds last) and the
# ReflectorGPU would hang in Terminating. Runs in the operator image (lightkube, the operator's client).
# Usage: python delete-reflectorgpu.py <namespace> <name> <timeout seconds>
import sys
import time

from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource

ReflectorGPU = create_namespaced_resource("reflector.monadical.com", "v1alpha1", "ReflectorGPU", "reflectorgpus")


def main(namespace: str, name: str, timeout: float) -> int:
    client = Client()  # the pod's service account, else the current kubeconfig
    try:
        client.delete(ReflectorGPU, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code != 404:
            raise
        print(f"ReflectorGPU {namespace}/{name} is already gone")
        return 0
    print(f"deleting ReflectorGPU {namespace}/{name}; waiting up to {timeout:.0f}s for the operator")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get(ReflectorGPU, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
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
