"""Model-source resolution, the offline hub error, response_format parsing, and loading a GGUF directly."""

from __future__ import annotations

import pytest

from rgpu_asr.errors import InvalidInput, ModelUnavailable
from rgpu_llm.engine import GenParams, GenRequest, LLMEngine, gguf_in
from rgpu_llm.openai_api import response_schema
from rgpu_llm.settings import LLMSettings
from rgpu_serving.errors import ApiError


def test_gguf_selection_in_a_model_directory(tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert gguf_in(hf) == (str(hf), None)
    mounted = tmp_path / "mnt-models"  # KServe's /mnt/models holding only a GGUF file
    mounted.mkdir()
    (mounted / "m.Q4.gguf").write_bytes(b"GGUF")
    assert gguf_in(mounted) == (str(mounted), "m.Q4.gguf")
    assert gguf_in(mounted / "m.Q4.gguf") == (str(mounted), "m.Q4.gguf")
    (mounted / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelUnavailable, match="REFLECTOR_GPU_LLM_GGUF_FILE"):
        gguf_in(mounted)
    assert gguf_in(mounted, "other.gguf") == (str(mounted), "other.gguf")
    with pytest.raises(ModelUnavailable, match="not found"):
        gguf_in(mounted, "absent.gguf")


def test_hub_name_offline_fails_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    engine = LLMEngine(LLMSettings(model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    with pytest.raises(ModelUnavailable) as err:
        engine.load()
    msg = str(err.value)
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in msg and "HF_HUB_OFFLINE" in msg and "REFLECTOR_GPU_LLM_MODEL" in msg


def test_response_format_parsing():
    assert response_schema(None) is None and response_schema({"type": "text"}) is None
    assert response_schema({"type": "json_object"}) == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert (
        response_schema({"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})
        == schema
    )
    for bad in ({"type": "xml"}, {"type": "json_schema"}, {"type": "json_schema", "json_schema": {"name": "x"}}):
        with pytest.raises(ApiError) as err:
            response_schema(bad)
        assert err.value.status_code == 400


@pytest.mark.slow
def test_gguf_file_loads_directly_like_a_mounted_model(smollm2_gguf, tmp_path):
    """The GGUF path KServe would mount (one .gguf in --model_dir) goes through the real loader."""
    mounted = tmp_path / "models"
    mounted.mkdir()
    (mounted / smollm2_gguf.name).symlink_to(smollm2_gguf)
    engine = LLMEngine(LLMSettings(cpu_threads=1), model_dir=str(mounted))
    engine.load()
    assert engine.context_length == 8192 and engine.has_chat_template()
    ids = engine.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
    (result,) = engine.generate([GenRequest(ids, GenParams(8, temperature=0))])
    assert "paris" in result.text.lower(), result.text
    grammar = engine.compile_schema(
        {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
    )
    (result,) = engine.generate([GenRequest(ids, GenParams(20, temperature=0), grammar)])
    assert result.text in ('{"ok": true}', '{"ok": false}'), result.text
    # A row that fails while decoding (a NaN temperature slipping past validation) fails alone.
    good, bad = engine.generate(
        [GenRequest(ids, GenParams(8, temperature=0)), GenRequest(ids, GenParams(8, temperature=float("nan")))]
    )
    assert "paris" in good.text.lower() and isinstance(bad, Exception), (good, bad)


def test_server_limits_on_completion_size_and_choices():
    """REFLECTOR_GPU_LLM_MAX_TOKENS_LIMIT / _MAX_N: one client cannot hold the GPU for a whole
    context or sixteen choices when the operator says so (defaults: the context, 16)."""
    from rgpu_llm.predictor import LLMPredictor
    from rgpu_serving.settings import ServingSettings

    engine = LLMEngine(LLMSettings(max_tokens_limit=100, max_n=2))
    engine.context_length = 8192  # what load() reads from the model
    assert engine.check_budget(10, 50, 1024) == 50
    assert engine.check_budget(10, None, 1024) == 100  # the default is capped too
    with pytest.raises(InvalidInput, match="REFLECTOR_GPU_LLM_MAX_TOKENS_LIMIT"):
        engine.check_budget(10, 101, 1024)
    unlimited = LLMEngine(LLMSettings())
    unlimited.context_length = 8192
    assert unlimited.check_budget(10, 8000, 1024) == 8000
    predictor = LLMPredictor("llm", engine, ServingSettings(apikey="k"))
    predictor._check_n(2)
    with pytest.raises(ApiError) as err:
        predictor._check_n(3)
    assert err.value.status_code == 400 and "REFLECTOR_GPU_LLM_MAX_N" in err.value.detail
