"""modelCache.type Job: the cache Job builder against the real batch/v1 schema, the plan (one Job
per model, InferenceServices held until it is Cached), and the whole flow against the emulated
cluster, the test playing the Job controller (status conditions Complete / Failed)."""

from __future__ import annotations

import datetime

import pytest
from operator_support import owner, validate_builtin

from rgpu_operator import modelcache, status
from rgpu_operator.context import Install, Observed
from rgpu_operator.desired import plan
from rgpu_operator.rbac import rules
from rgpu_operator.schema import apply_defaults, defaulted_spec, openapi_schema

DEFAULTS = Install(image_registry="ghcr.io/monadical-sas", image_tag="0.1.0")
TRANSCRIBER_MODEL = "nvidia/parakeet-tdt-0.6b-v2"
DIARIZER_URI = "s3://models/diarizer"
SPEC = {
    "modelCache": {"type": "Job", "pvc": {"claimName": "models"}, "job": {"retrySeconds": 2}},
    "transcriber": {"model": {"name": TRANSCRIBER_MODEL}, "hubTokenSecret": {"name": "hf", "key": "token"}},
    "diarizer": {"model": {"storageUri": DIARIZER_URI}},
}


def full(spec: dict, name: str = "rgpu") -> dict:
    return apply_defaults(openapi_schema(), owner(spec, name))


def test_one_job_per_model_validates_against_batch_v1_and_runs_non_root():
    p = plan(full(SPEC), DEFAULTS, Observed(model_jobs={}))
    by_source = {j["metadata"]["annotations"][modelcache.ANNOTATION_SOURCE]: j for j in p.cache_jobs}
    # The two transcriber profiles share one model: one Job.
    assert set(by_source) == {f"hf://{TRANSCRIBER_MODEL}", DIARIZER_URI}
    for job in p.cache_jobs:
        validate_builtin(job)
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 1000
        assert job["spec"]["activeDeadlineSeconds"] == 7200 and job["spec"]["backoffLimit"] == 2
        (container,) = pod["containers"]
        assert container["image"] == DEFAULTS.storage_initializer_image
        assert container["resources"]["limits"]["memory"] == "4Gi"
        assert "ownerReferences" not in job["metadata"]  # shared between ReflectorGPUs
    hub = by_source[f"hf://{TRANSCRIBER_MODEL}"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in hub["env"]
    s3 = by_source[DIARIZER_URI]["spec"]["template"]["spec"]["containers"][0]
    assert "HF_TOKEN" not in {e["name"] for e in s3["env"]}
    assert s3["args"][1].startswith("/mnt/cache/models/")
    # No GPU is held while the models download: their InferenceServices are not made yet.
    isvcs = {o["metadata"]["name"] for o in p.present if o["kind"] == "InferenceService"}
    assert {"rgpu-transcriber-live", "rgpu-transcriber-file", "rgpu-diarizer"}.isdisjoint(isvcs)
    assert "rgpu-padding" in isvcs


def test_two_resources_in_a_namespace_share_the_job_and_path():
    a = plan(full(SPEC, "a"), DEFAULTS, Observed(model_jobs={}))
    b = plan(full(SPEC, "b"), DEFAULTS, Observed(model_jobs={}))
    assert [j["metadata"]["name"] for j in a.cache_jobs] == [j["metadata"]["name"] for j in b.cache_jobs]
    assert a.cache_jobs == b.cache_jobs


def test_cached_models_are_mounted_from_the_pvc_and_failures_reported():
    models = modelcache.models(defaulted_spec(full(SPEC)["spec"]))
    states: dict[str, modelcache.JobState | None] = {}
    for digest, m in models.items():
        states[digest] = (
            modelcache.JobState(modelcache.CACHED)
            if m.source.startswith("hf://")
            else modelcache.JobState(modelcache.FAILED, "DeadlineExceeded", "Job was active longer than specified")
        )
    p = plan(full(SPEC), DEFAULTS, Observed(model_jobs=states))
    assert p.cache_jobs == []
    live = next(o for o in p.present if o["metadata"]["name"] == "rgpu-transcriber-live")
    hub = next(m for m in models.values() if m.source.startswith("hf://"))
    assert hub.uri in str(live["spec"]["predictor"])
    assert "rgpu-diarizer" not in {o["metadata"]["name"] for o in p.present if o["kind"] == "InferenceService"}
    out = status.build(full(SPEC), p, {}, None, "t")
    by_model = {e["model"]: e for e in out["modelCache"]}
    assert by_model[f"hf://{TRANSCRIBER_MODEL}"]["state"] == "Cached"
    assert by_model[DIARIZER_URI]["state"] == "Failed" and by_model[DIARIZER_URI]["reason"] == "DeadlineExceeded"
    assert out["components"]["diarizer"]["reason"] == "ModelCacheFailed"


def test_rbac_grants_jobs_without_update():
    (jobs,) = [r for r in rules(cluster=False) if r["resources"] == ["jobs"]]
    assert jobs["apiGroups"] == ["batch"] and "update" not in jobs["verbs"]


# --- end to end against the emulated cluster ------------------------------------------------------

km = pytest.importorskip("kmock", reason="kmock is a test dependency of the operator (dev extra)")
from cluster import ClusterEmulator  # noqa: E402
from emulated import ISVC, NAME, RGPU, apply, eventually, live_names, obj, patch  # noqa: E402

JOBS = "batch/v1/jobs"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _finish(emu, name: str, kind: str, reason: str = "", message: str = "") -> None:
    cond = {"type": kind, "status": "True", "lastTransitionTime": _now(), "reason": reason, "message": message}
    await patch(emu, JOBS, name, {"status": {"conditions": [cond]}}, sub="status")


def _entry(emu, source: str) -> dict:
    return next(e for e in obj(emu, RGPU, NAME)["status"]["modelCache"] if e["model"] == source)


@pytest.mark.asyncio
@pytest.mark.kmock(cls=ClusterEmulator)
async def test_cache_jobs_run_first_then_the_inferenceservices_and_failures_retry(running):
    emu = running
    await apply(emu, SPEC)
    jobs = await eventually(lambda: len(live_names(emu, JOBS)) == 2 and live_names(emu, JOBS), what="two jobs")
    # Two components share the transcriber's model: two Jobs for three model users.
    await eventually(lambda: obj(emu, ISVC, f"{NAME}-padding"), what="padding isvc")
    for comp in ("transcriber-live", "transcriber-file", "diarizer"):
        assert obj(emu, ISVC, f"{NAME}-{comp}") is None
    hub = await eventually(lambda: _entry(emu, f"hf://{TRANSCRIBER_MODEL}"), what="status.modelCache")
    assert hub["state"] == "Caching" and hub["components"] == ["transcriber-live", "transcriber-file"]
    s3 = _entry(emu, DIARIZER_URI)
    assert {hub["job"], s3["job"]} == set(jobs)

    # The Job controller reports success: the InferenceServices are made, reading the PVC.
    await _finish(emu, hub["job"], "Complete")
    live = await eventually(lambda: obj(emu, ISVC, f"{NAME}-transcriber-live"), what="isvc after Complete")
    await eventually(lambda: obj(emu, ISVC, f"{NAME}-transcriber-file"), what="the other user's isvc")
    assert hub["storageUri"] in str(live["spec"]["predictor"])
    await eventually(lambda: _entry(emu, f"hf://{TRANSCRIBER_MODEL}")["state"] == "Cached", what="Cached")

    # The other fails: status says why, no InferenceService, and a new Job after retrySeconds.
    first_uid = obj(emu, JOBS, s3["job"])["metadata"]["uid"]
    await _finish(emu, s3["job"], "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    failed = await eventually(lambda: _entry(emu, DIARIZER_URI)["state"] == "Failed" and _entry(emu, DIARIZER_URI))
    assert failed["reason"] == "BackoffLimitExceeded" and "backoff limit" in failed["message"]
    comp = obj(emu, RGPU, NAME)["status"]["components"]["diarizer"]
    assert comp["reason"] == "ModelCacheFailed" and "BackoffLimitExceeded" in comp["message"]
    assert obj(emu, ISVC, f"{NAME}-diarizer") is None
    await eventually(
        lambda: (obj(emu, JOBS, s3["job"]) or {}).get("metadata", {}).get("uid") not in (None, first_uid),
        timeout=20,
        what="a new Job after the backoff",
    )
    await eventually(lambda: _entry(emu, DIARIZER_URI)["state"] == "Caching", what="Caching again")
    await _finish(emu, s3["job"], "Complete")
    diarizer = await eventually(lambda: obj(emu, ISVC, f"{NAME}-diarizer"), what="diarizer isvc")
    assert s3["storageUri"] in str(diarizer["spec"]["predictor"])
    assert len(live_names(emu, JOBS)) == 2


@pytest.mark.asyncio
@pytest.mark.kmock(cls=ClusterEmulator)
async def test_two_resources_in_a_namespace_fetch_each_model_once(running):
    emu = running
    await apply(emu, SPEC, name="a")
    await apply(emu, SPEC, name="b")
    for name in ("a", "b"):
        await eventually(lambda n=name: len(obj(emu, RGPU, n)["status"]["modelCache"]) == 2, what=f"{name} status")
    assert len(live_names(emu, JOBS)) == 2
    job = next(e["job"] for e in obj(emu, RGPU, "a")["status"]["modelCache"] if e["model"].startswith("hf://"))
    await _finish(emu, job, "Complete")
    for name in ("a", "b"):
        await eventually(lambda n=name: obj(emu, ISVC, f"{n}-transcriber-live"), what=f"{name} isvc")
    assert len(live_names(emu, JOBS)) == 2


def test_storage_credentials_and_workload_identity_reach_the_job():
    spec = {
        **SPEC,
        "modelCache": {
            **SPEC["modelCache"],
            "job": {
                "env": [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}}}],
                "serviceAccountName": "model-fetcher",
                "nodeSelector": {"pool": "cpu"},
            },
        },
    }
    p = plan(full(spec), DEFAULTS, Observed(model_jobs={}))
    for job in p.cache_jobs:
        validate_builtin(job)
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "model-fetcher" and pod["automountServiceAccountToken"] is True
        assert pod["nodeSelector"] == {"pool": "cpu"}
        assert {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}}} in pod[
            "containers"
        ][0]["env"]


def test_warnings_for_a_read_only_claim_and_the_removed_local_model_cache():
    body = full(SPEC)
    p = plan(body, DEFAULTS, Observed(model_jobs={}, model_pvc_modes=("ReadOnlyMany",)))
    assert any("cannot write it" in w for w in status.build(body, p, {}, None, "t")["warnings"])
    legacy = full({"modelCache": {"type": "LocalModelCache", "localModelCache": {"nodeGroups": ["gpus"]}}})
    p = plan(legacy, DEFAULTS, Observed(model_jobs={}))
    assert p.cache_jobs == [] and not any(o["kind"] == "LocalModelCache" for o in p.present)
    assert any("LocalModelCache was removed" in w for w in status.build(legacy, p, {}, None, "t")["warnings"])


def test_type_job_needs_the_claim_in_the_crd_and_the_operator():
    from operator_support import cel_errors

    from rgpu_operator.rules import problems

    body = full({"modelCache": {"type": "Job"}})
    assert any("modelCache.pvc is required when type is PVC or Job" in e for e in cel_errors(openapi_schema(), body))
    assert "cache-pvc" in [p.rule for p in problems(defaulted_spec(body["spec"]))]


def test_the_same_model_on_another_claim_is_another_cache():
    other = {**SPEC, "modelCache": {**SPEC["modelCache"], "pvc": {"claimName": "other"}}}
    a = {j["metadata"]["name"] for j in plan(full(SPEC), DEFAULTS, Observed(model_jobs={})).cache_jobs}
    b = {j["metadata"]["name"] for j in plan(full(other), DEFAULTS, Observed(model_jobs={})).cache_jobs}
    assert a.isdisjoint(b)
