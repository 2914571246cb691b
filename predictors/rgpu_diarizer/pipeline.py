"""Loading a pyannote speaker-diarization pipeline and running it on in-memory audio.

Where it comes from is decided by the one model resolver (``rgpu_asr.models``): a pipeline
directory in pyannote's layout (a ``config.yaml`` whose ``segmentation`` / ``embedding`` (/
``plda``) point at weight files, either as ``$model/<subfolder>`` or as paths relative to the
directory), a ``config.yaml`` file, or a hub name (``pyannote/speaker-diarization-3.1``), which
needs network and a token.

pyannote 4 quirks handled here: a config without PLDA (every 3.x pipeline, and any pipeline that
clusters without VBx) makes ``SpeakerDiarization`` either download community-1's PLDA from the
hub (no ``plda`` key) or call ``get_plda(None)`` and fail (``plda: null``); we pass ``plda: None``
and load it as "no PLDA". Audio reaches pyannote as ``{"waveform", "sample_rate"}``, never as a
file (its torchcodec decoder is not used).
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rgpu_asr.errors import ModelUnavailable
from rgpu_asr.models import ModelChoice, ModelFamily
from rgpu_asr.types import SAMPLE_RATE

from .pyannote_compat import prepare_pyannote

log = logging.getLogger("rgpu.diarizer")

CONFIG_NAME = "config.yaml"
_WEIGHT_KEYS = ("segmentation", "embedding", "plda")


def _pipeline_config(path: Path) -> Path | None:
    if path.is_dir():
        return path / CONFIG_NAME if (path / CONFIG_NAME).is_file() else None
    return path if path.suffix in (".yaml", ".yml") else None


FAMILY = ModelFamily(
    name="diarization pipeline",
    env="REFLECTOR_GPU_DIARIZER_MODEL",
    expected=(
        "a pyannote pipeline directory (a config.yaml whose segmentation and embedding point at weight files, "
        "as in pyannote/speaker-diarization-3.1) or such a config.yaml"
    ),
    accepts=_pipeline_config,
)


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: Any  # pyannote's label (e.g. "SPEAKER_00")


def hub_token(configured: str) -> str | None:
    if configured:
        return configured
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # pragma: no cover - very old huggingface_hub
        return os.environ.get("HF_TOKEN") or None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def fetch_hub_config(repo: str, token: str | None, cache_dir: str | None) -> Path:
    """Download (or find in the cache) the pipeline's config.yaml, with errors a user can act on."""
    offline = _hub_offline()
    if not token and not offline:
        raise ModelUnavailable(
            f"diarization pipeline '{repo}' is on the Hugging Face hub and pyannote's pipelines are gated: accept its "
            f"conditions on https://hf.co/{repo} and set REFLECTOR_GPU_DIARIZER_HF_TOKEN (or HF_TOKEN) to a token, "
            "or point REFLECTOR_GPU_DIARIZER_MODEL / --model_dir at a local pipeline directory"
        )
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, CONFIG_NAME, repo_type="model", token=token or None, cache_dir=cache_dir))
    except Exception as exc:
        why = (
            "the hub is disabled (HF_HUB_OFFLINE=1) and it is not in the cache"
            if offline
            else f"{type(exc).__name__}: {exc}"
        )
        raise ModelUnavailable(
            f"could not load diarization pipeline '{repo}' from the Hugging Face hub ({why}); without network access, "
            "point REFLECTOR_GPU_DIARIZER_MODEL or --model_dir at a local pipeline directory (config.yaml + weights)"
        ) from exc


# ---- config preparation ------------------------------------------------------------------------
def prepare_config(config: dict, base: Path | str, token: str | None, cache_dir: str | None) -> dict:
    """Make ``config`` loadable from anywhere: ``$model/...`` expanded against ``base``,
    relative weight paths made absolute, and PLDA made explicit (``None`` unless VBx needs it)."""
    prepare_pyannote()
    from pyannote.audio.core.pipeline import expand_subfolders

    config = copy.deepcopy(config)
    if not isinstance(config.get("pipeline"), dict) or "name" not in config["pipeline"]:
        raise ModelUnavailable("the pipeline config.yaml has no 'pipeline: {name: ...}' section")
    params = config["pipeline"].setdefault("params", {}) or {}
    config["pipeline"]["params"] = params
    local = isinstance(base, Path)
    for key in _WEIGHT_KEYS:
        value = params.get(key)
        if local and isinstance(value, str) and not value.startswith("$model/"):
            candidate = Path(value).expanduser()
            if not candidate.is_absolute() and (base / candidate).exists():
                params[key] = str(base / candidate)
            elif candidate.is_absolute() and not candidate.exists():
                raise ModelUnavailable(f"the pipeline's {key} weights {candidate} do not exist")
    if isinstance(base, Path):
        for key in ("segmentation", "embedding"):
            value = params.get(key)
            if isinstance(value, str) and value.startswith("$model/"):
                folder = base / value.removeprefix("$model/").split("@")[0]
                if not folder.exists():
                    raise ModelUnavailable(f"the pipeline's {key} is missing: {folder} does not exist")
    clustering = params.get("clustering", "VBxClustering")
    if "plda" not in params and clustering != "VBxClustering":
        params["plda"] = None  # 3.x configs: no PLDA (pyannote 4 would fetch community-1's)
    if params.get("plda") is None and clustering == "VBxClustering":
        raise ModelUnavailable("the pipeline uses VBxClustering, which needs a PLDA: add 'plda' to its config.yaml")
    # A local pipeline's directory goes in as a Path, as pyannote's own local loading passes it.
    expand_subfolders(config, base, token=token, cache_dir=cache_dir)  # type: ignore[arg-type]
    return config


_plda_patch_lock = threading.Lock()


def _allow_missing_plda() -> None:
    """pyannote 4's ``SpeakerDiarization`` calls ``get_plda(plda)`` even when ``plda`` is None,
    which raises ``TypeError``; treat None as "no PLDA" (only VBx clustering uses one)."""
    prepare_pyannote()
    from pyannote.audio.pipelines import speaker_diarization as sd

    with _plda_patch_lock:
        if getattr(sd.get_plda, "_rgpu_allows_none", False):
            return
        original = sd.get_plda

        def get_plda(plda, *args, **kwargs):
            if plda is None:
                return None
            return original(plda, *args, **kwargs)

        get_plda._rgpu_allows_none = True  # type: ignore[attr-defined]
        sd.get_plda = get_plda


def pick_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable(f"REFLECTOR_GPU_DIARIZER_DEVICE={device} but no CUDA device is available")
    return dev


def load_pipeline(
    choice: ModelChoice,
    token: str = "",
    cache_dir: str | None = None,
    device: str = "auto",
    segmentation_batch_size: int = 0,
    embedding_batch_size: int = 0,
) -> Any:
    """The pyannote ``SpeakerDiarization`` pipeline the resolver chose, on the chosen device."""
    kind, where = ("local", Path(choice.source)) if choice.local else ("hub", choice.source)
    tok = hub_token(token) if kind == "hub" else None
    if kind == "hub":
        config_path = fetch_hub_config(str(where), tok, cache_dir)
        base: Path | str = str(where)
    else:
        config_path = Path(where)
        base = config_path.parent.resolve()

    prepare_pyannote()
    import yaml
    from pyannote.audio import Pipeline

    try:
        raw = yaml.safe_load(config_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelUnavailable(f"could not read the pipeline config {config_path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelUnavailable(f"the pipeline config {config_path} is not a YAML mapping")
    config = prepare_config(raw, base, tok, cache_dir)
    _allow_missing_plda()
    # Lightning logs at INFO that it upgraded pyannote's older checkpoints in memory: expected, not news.
    logging.getLogger("lightning.pytorch.utilities.migration.utils").setLevel(logging.WARNING)
    try:
        pipeline = Pipeline.from_pretrained(config, token=tok, cache_dir=cache_dir)
    except ModelUnavailable:
        raise
    except Exception as exc:
        if kind == "hub":
            raise ModelUnavailable(
                f"could not load the weights of diarization pipeline '{where}' from the Hugging Face hub "
                f"({type(exc).__name__}: {exc}); check the token has access to every model the pipeline names, or "
                "point REFLECTOR_GPU_DIARIZER_MODEL / --model_dir at a local pipeline directory"
            ) from exc
        raise ModelUnavailable(
            f"could not load the diarization pipeline from {config_path}: {type(exc).__name__}: {exc}"
        ) from exc
    if pipeline is None:
        raise ModelUnavailable(f"could not load the diarization pipeline from {where}")
    if "num_speakers" not in inspect.signature(getattr(pipeline, "apply", lambda: None)).parameters:
        raise ModelUnavailable(f"{config['pipeline']['name']} is not a speaker-diarization pipeline")
    if segmentation_batch_size > 0 and hasattr(pipeline, "segmentation_batch_size"):
        pipeline.segmentation_batch_size = segmentation_batch_size
    if embedding_batch_size > 0 and hasattr(pipeline, "embedding_batch_size"):
        pipeline.embedding_batch_size = embedding_batch_size
    dev = pick_device(device)
    pipeline.to(dev)
    log.info("diarization pipeline %s loaded on %s", where, dev)
    return pipeline


# ---- running it --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineResult:
    turns: list[Turn]
    #: pyannote's label -> that speaker's embedding (the centroid its clustering found); empty when
    #: the pipeline gives none (oracle clustering).
    embeddings: dict[Any, np.ndarray]


def run(
    pipeline,
    audio: np.ndarray,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    exclusive: bool = False,
) -> PipelineResult:
    """Blocking: diarize 16 kHz mono float32 ``audio`` handed over in memory."""
    import torch

    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    with torch.inference_mode():
        output = pipeline(
            {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": "request"},
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
        )
    annotation = getattr(output, "exclusive_speaker_diarization" if exclusive else "speaker_diarization", output)
    turns = [Turn(float(seg.start), float(seg.end), label) for seg, _, label in annotation.itertracks(yield_label=True)]
    # pyannote 4: one embedding per speaker, in speaker_diarization.labels() order (both
    # annotations carry the same labels).
    centroids = getattr(output, "speaker_embeddings", None)
    labels = getattr(output, "speaker_diarization", annotation).labels()
    embeddings: dict[Any, np.ndarray] = {}
    if centroids is not None and len(centroids) >= len(labels):
        embeddings = {label: np.asarray(centroids[i], dtype=np.float32) for i, label in enumerate(labels)}
    return PipelineResult(turns, embeddings)


#: Reference clips are embedded in pieces of at most this long (pyannote's embedding models see
#: 10 s chunks inside the pipeline, so a centroid is an average of embeddings of that size).
EMBEDDING_PIECE_S = 10.0


def embed_clips(pipeline, clips: list[np.ndarray]) -> np.ndarray:
    """Blocking: one embedding per clip from the pipeline's own speaker-embedding model, so a
    known speaker's reference and the diarized speakers' centroids live in the same space. A clip
    longer than one piece is embedded piece by piece and the unit vectors averaged.

    pyannote keeps that model as ``pipeline._embedding`` (its ``get_embeddings`` calls it the same
    way); loading a second copy would double its memory."""
    import torch

    model = getattr(pipeline, "_embedding", None)
    if model is None:
        raise ModelUnavailable("this diarization pipeline has no speaker-embedding model to compare known speakers")
    piece = int(EMBEDDING_PIECE_S * SAMPLE_RATE)
    out = []
    for clip in clips:
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        pieces = [clip[i : i + piece] for i in range(0, len(clip), piece)]
        pieces = [p for p in pieces if len(p) >= piece // 4] or pieces[:1]
        vectors = []
        for p in pieces:
            with torch.inference_mode():
                e = np.asarray(model(torch.from_numpy(p)[None, None]), dtype=np.float64).reshape(-1)
            norm = np.linalg.norm(e)
            if np.isfinite(norm) and norm > 0:
                vectors.append(e / norm)
        out.append(np.mean(vectors, axis=0) if vectors else np.zeros(int(model.dimension)))
    return np.stack(out) if out else np.zeros((0, 0))


def number_speakers(turns: list[Turn], offset_s: float = 0.0) -> tuple[list[dict], dict[Any, int]]:
    """``[{start, end, speaker:int}]`` (see :func:`to_contract`) and pyannote's label -> that int."""
    rows = [(round(offset_s + t.start, 3), round(offset_s + t.end, 3), t.speaker) for t in turns]
    rows = sorted((r for r in rows if r[1] > r[0]), key=lambda r: (r[0], r[1], str(r[2])))
    ids: dict[Any, int] = {}
    out = []
    for start, end, label in rows:
        speaker = ids.setdefault(label, len(ids))
        out.append({"start": start, "end": end, "speaker": speaker})
    return out, ids


def to_contract(turns: list[Turn], offset_s: float = 0.0) -> list[dict]:
    """``[{start, end, speaker:int}]``: shifted, rounded to ms, sorted by start, speakers numbered
    0..N-1 in order of first appearance (never parsed out of pyannote's label strings)."""
    return number_speakers(turns, offset_s)[0]
