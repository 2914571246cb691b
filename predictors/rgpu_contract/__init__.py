"""What the predictors and the operator must agree on, in one dependency-free module.

The operator never imports predictor code (different images, no torch), and the predictors
never import the operator; both import this. Route paths, environment variable names, ports,
mount paths and component names live here so a rename cannot drift between the two sides.
"""

from __future__ import annotations

# --- Ports and mounts ---------------------------------------------------------------------
#: Port every predictor container listens on (KServe's default HTTP port).
HTTP_PORT = 8080
#: Where KServe's storage initializer puts the model named by ``storageUri``.
MODEL_DIR = "/mnt/models"
#: Directory where the operator mounts the API-key Secret; every file in it holds keys.
API_KEY_MOUNT_DIR = "/etc/reflector-gpu/apikeys"
#: Port the predictors serve Prometheus ``/metrics`` on in the cluster, apart from the API port,
#: so a NetworkPolicy can admit the monitoring namespace to this port alone.
METRICS_PORT = 9090

# --- Environment variables read by the predictors -----------------------------------------
#: One or more API keys, comma-separated (name kept from the reference deployment).
ENV_API_KEY = "REFLECTOR_GPU_APIKEY"
#: A file (or a directory of files) holding keys, one per line or comma-separated.
#: Re-read when it changes, so a rotated Secret reaches running pods without a restart.
ENV_API_KEY_FILE = "REFLECTOR_GPU_APIKEY_FILE"
#: Set to ``true`` to serve without authentication (the service refuses to start otherwise).
ENV_AUTH_DISABLED = "REFLECTOR_GPU_AUTH_DISABLED"
#: Comma-separated host names or CIDRs that user-supplied URLs may reach despite the SSRF guard.
ENV_URL_ALLOWLIST = "REFLECTOR_GPU_URL_ALLOWLIST"
#: The model a predictor loads (hub name or directory; ``/mnt/models`` with a storageUri) when
#: its own ``REFLECTOR_GPU_<PREDICTOR>_MODEL`` is unset. Set by the operator.
ENV_MODEL = "REFLECTOR_GPU_MODEL"
#: Admission (docs/scaling.md): requests a replica works on at once, and requests it holds
#: waiting (FIFO) behind them; beyond both, 503 + Retry-After. The operator sets both from a
#: component's ``maxInFlight`` / ``maxQueued``.
ENV_MAX_IN_FLIGHT = "REFLECTOR_GPU_MAX_IN_FLIGHT"
ENV_MAX_QUEUED = "REFLECTOR_GPU_MAX_QUEUED"
#: Deprecated: the total held at once (split into in flight + queued when it alone is set).
ENV_MAX_PENDING_REQUESTS = "REFLECTOR_GPU_MAX_PENDING_REQUESTS"
#: Prometheus series the admission exports, by ``route``; the operator's KEDA trigger sums the
#: two gauges for a component's pods.
METRIC_INFLIGHT = "reflector_gpu_inflight_requests"
METRIC_QUEUED = "reflector_gpu_queued_requests"
METRIC_QUEUE_WAIT = "reflector_gpu_queue_wait_seconds"
#: Port for ``/metrics`` (``0``: on the API port, unauthenticated; the local mode's default).
#: The KServe entry point defaults to ``METRICS_PORT``; the operator sets it explicitly.
ENV_METRICS_PORT = "REFLECTOR_GPU_METRICS_PORT"
#: ``false`` turns off ``/docs`` and ``/openapi.json`` (always behind the API key when on).
#: The operator sets ``false`` in the cluster.
ENV_API_DOCS = "REFLECTOR_GPU_API_DOCS"
#: Largest upload and largest download (``audio_file_url``, padding tracks) a predictor accepts,
#: in MiB; files are spooled to ``/tmp``, so the operator sizes that volume from these.
ENV_MAX_UPLOAD_MB = "REFLECTOR_GPU_MAX_UPLOAD_MB"
ENV_MAX_DOWNLOAD_MB = "REFLECTOR_GPU_MAX_DOWNLOAD_MB"
#: Translation model family (``nllb``, ``m2m100`` or ``marian``); it must match the model. Unset
#: (``auto``), the translator tells the family from the model's tokenizer or name.
ENV_TRANSLATOR_ENGINE = "REFLECTOR_GPU_TRANSLATOR_ENGINE"
TRANSLATOR_ENGINES = ("nllb", "m2m100", "marian")
#: Transcriber profile: ``live`` (short clips, high concurrency) or ``file`` (long files).
ENV_PROFILE = "REFLECTOR_GPU_PROFILE"
PROFILES = ("live", "file")
#: After SIGTERM: seconds during which readiness is false but requests are still served (the
#: endpoint leaves the Service meanwhile), then seconds in-flight requests get to finish.
ENV_SHUTDOWN_DRAIN_S = "REFLECTOR_GPU_SHUTDOWN_DRAIN_S"
ENV_SHUTDOWN_GRACE_S = "REFLECTOR_GPU_SHUTDOWN_GRACE_S"

#: The diarizer a transcriber calls for speaker-attributed transcription (``diarized_json``,
#: ``diarize: true``): its base URL, and a file holding the key it takes. The operator sets both
#: on the file transcriber when the diarizer is enabled (the key file is the primary key of the
#: mounted API-key Secret, ``API_KEY_MOUNT_DIR/key-0``).
ENV_DIARIZATION_URL = "REFLECTOR_GPU_DIARIZATION_URL"
ENV_DIARIZATION_APIKEY_FILE = "REFLECTOR_GPU_DIARIZATION_APIKEY_FILE"

# --- Components and the routes each one serves ----------------------------------------------
TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
TRANSCRIPTIONS_FROM_URL_PATH = "/v1/audio/transcriptions-from-url"
LEGACY_TRANSCRIBE_PATH = "/transcribe"
DIARIZE_PATH = "/diarize"
#: The diarizer's multipart form of ``/diarize`` (recording, hints, known-speaker clips): what the
#: transcriber streams an upload to. Under ``DIARIZE_PATH``, so the same route prefix reaches it.
DIARIZE_UPLOAD_PATH = "/diarize/upload"
TRANSLATE_PATH = "/translate"
LLM_PATH = "/llm"
PAD_PATH = "/pad"
#: The key check alone, for a proxy's external authorization (ingress-nginx ``auth-url``, Envoy
#: Gateway ``extAuth``) in front of a server that checks no key (the LLM on KServe's Hugging
#: Face runtime): 2xx for a valid ``Authorization: Bearer`` key, 401 otherwise, any method, and
#: any path below it (Envoy appends the original request path to the configured one). Served by
#: the padding predictor (always on, CPU); never routed publicly.
AUTH_PATH = "/auth"
#: Live transcription over a WebSocket (OpenAI's Realtime transcription protocol).
REALTIME_PATH = "/v1/realtime"

#: Component name -> the path prefixes the ingress sends to it. Both transcriber engines serve
#: the same routes; the live/file split is by route.
COMPONENT_ROUTES: dict[str, tuple[str, ...]] = {
    "transcriber-live": (TRANSCRIPTIONS_PATH, LEGACY_TRANSCRIBE_PATH, REALTIME_PATH),
    "transcriber-file": (TRANSCRIPTIONS_FROM_URL_PATH,),
    "diarizer": (DIARIZE_PATH,),
    "translator": (TRANSLATE_PATH,),
    "llm": (LLM_PATH, "/v1/chat/completions", "/v1/completions", "/openai/v1"),
    "padding": (PAD_PATH,),
}

#: Routes a component also serves under a public prefix of its own (the ingress cannot route on
#: form fields): uploads sent there reach the file transcriber, so long diarized uploads never
#: land on the live pool.
DEDICATED_ROUTES: dict[str, tuple[str, ...]] = {
    "transcriber-file": (TRANSCRIPTIONS_PATH, TRANSCRIPTIONS_FROM_URL_PATH),
}

#: Transcription engines and the console script each predictor image runs.
ENGINES = ("parakeet", "whisper")
PREDICTOR_COMMANDS: dict[str, str] = {
    "whisper": "rgpu-whisper",
    "parakeet": "rgpu-parakeet",
    "diarizer": "rgpu-diarizer",
    "translator": "rgpu-translator",
    "llm": "rgpu-llm",
    "padding": "rgpu-padding",
}

# --- Paths that stay open (no API key): probes and scraping --------------------------------
LIVENESS_PATH = "/v2/health/live"
READINESS_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
OPEN_PATHS: frozenset[str] = frozenset({"/", LIVENESS_PATH, READINESS_PATH, METRICS_PATH})


#: Marker in the per-model readiness answer (503 ``detail``) of a model whose load failed, followed
#: by ``": <reason>"``; without it a 503 means "still loading". The operator reports the reason.
MODEL_LOAD_FAILED = "model failed to load"


def is_readiness_path(path: str) -> bool:
    """KServe's readiness reads: server-wide, and per model (``GET /v1/models/{name}``,
    ``/v2/models/{name}/ready``)."""
    if path == READINESS_PATH:
        return True
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[:2] == ["v1", "models"] and ":" not in parts[2]:
        return True
    return len(parts) == 4 and parts[:2] == ["v2", "models"] and parts[3] == "ready"


def model_readiness_path(model_name: str) -> str:
    """Per-model readiness (503 until the model loaded): what a pod's readinessProbe should hit.

    KServe's server-wide ``/v2/health/ready`` stays true even when a model failed to load.
    """
    return f"/v2/models/{model_name}/ready"


__all__ = [name for name in dir() if name.isupper()] + ["model_readiness_path", "is_readiness_path"]
