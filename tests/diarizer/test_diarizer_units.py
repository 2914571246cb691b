"""Diarizer pieces that need no running service: output shaping, options, pipeline configs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rgpu_asr.errors import InvalidInput, ModelUnavailable
from rgpu_diarizer.engine import DiarizeOptions
from rgpu_diarizer.pipeline import Turn, to_contract
from support import KEYS, Service


def test_speakers_are_numbered_by_first_appearance_sorted_and_rounded():
    turns = [
        Turn(5.0, 6.0, "SPEAKER_07"),
        Turn(0.12345, 2.0, "SPEAKER_02"),
        Turn(1.5, 3.0004, "SPEAKER_07"),
        Turn(7.0, 7.0002, "SPEAKER_11"),  # empty once rounded: dropped
        Turn(8.0, 9.0, "SPEAKER_100"),  # labels whose last two characters collide are still distinct
    ]
    out = to_contract(turns, offset_s=10.0)
    assert out == [
        {"start": 10.123, "end": 12.0, "speaker": 0},
        {"start": 11.5, "end": 13.0, "speaker": 1},
        {"start": 15.0, "end": 16.0, "speaker": 1},
        {"start": 18.0, "end": 19.0, "speaker": 2},
    ]
    assert to_contract([]) == []


def test_options_validation():
    assert DiarizeOptions.build() == DiarizeOptions()
    assert DiarizeOptions.build("2.5", 3).timestamp == 2.5
    for bad in (
        {"timestamp": "nan"},
        {"timestamp": -1},
        {"num_speakers": 0},
        {"min_speakers": 1.5},
        {"max_speakers": True},
        {"min_speakers": 4, "max_speakers": 2},
        {"num_speakers": 2, "max_speakers": 3},  # an exact count and a bound: one or the other
    ):
        with pytest.raises(InvalidInput):
            DiarizeOptions.build(**bad)


def test_configs_without_plda_load_without_the_hub(packaged_pipeline: Path):
    """pyannote 4 either fetches community-1's PLDA (no 'plda' key) or calls get_plda(None):
    3.x-style configs (agglomerative clustering) must load offline with no PLDA."""
    from rgpu_diarizer.pipeline import _allow_missing_plda, prepare_config

    base = packaged_pipeline
    legacy = {
        "version": "3.1.0",
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": "segmentation/pytorch_model.bin",
                "embedding": "$model/embedding",
                "clustering": "AgglomerativeClustering",
            },
        },
    }
    cfg = prepare_config(legacy, base, None, None)
    params = cfg["pipeline"]["params"]
    assert params["plda"] is None
    assert params["segmentation"] == str(base / "segmentation/pytorch_model.bin")
    assert params["embedding"]["checkpoint"] == base and params["embedding"]["subfolder"] == "embedding"
    vbx = {"pipeline": {"name": "pyannote.audio.pipelines.SpeakerDiarization", "params": {"plda": None}}}
    with pytest.raises(ModelUnavailable, match="PLDA"):
        prepare_config(vbx, base, None, None)
    _allow_missing_plda()
    from pyannote.audio.pipelines import speaker_diarization

    assert speaker_diarization.get_plda(None) is None


@pytest.mark.parametrize(
    "env, words",
    [
        (
            {
                "REFLECTOR_GPU_DIARIZER_MODEL": "pyannote/speaker-diarization-3.1",
                "HF_HUB_OFFLINE": "1",
                "REFLECTOR_GPU_DIARIZER_HF_TOKEN": "hf_dummy",
            },
            "HF_HUB_OFFLINE",
        ),
        ({"REFLECTOR_GPU_DIARIZER_MODEL": "pyannote/speaker-diarization-3.1", "HF_HUB_OFFLINE": "0"}, "HF_TOKEN"),
        ({"REFLECTOR_GPU_DIARIZER_MODEL": "/nonexistent/pipeline"}, "does not exist"),
    ],
    ids=["offline", "no-token", "missing-dir"],
)
def test_unloadable_pipeline_is_not_ready_with_the_reason(tmp_path, env, words):
    hf_home = tmp_path / "hf"
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "diarizer",
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "HF_HOME": str(hf_home),
            "HF_TOKEN": "",
            **env,
        },
        tmp_path,
        "diarizer-unloadable",
    )
    try:
        svc.wait_listening()
        assert httpx.get(f"{svc.base}/v2/models/diarizer/ready", timeout=5).status_code == 503
        r = httpx.post(
            f"{svc.base}/diarize",
            params={"audio_file_url": "http://example.com/a.wav"},
            headers={"Authorization": f"Bearer {KEYS[0]}"},
            timeout=10,
        )
        assert r.status_code == 503 and r.headers.get("retry-after")
        assert words in r.json()["detail"], r.json()["detail"]
    finally:
        assert svc.stop() == 0
