"""In-process checks of the translator's parts: code tables, sentence splitting with a real
tokenizer, the M2M100 family through the production loading path, and clear load errors."""

from __future__ import annotations

import pytest

from rgpu_asr.errors import InvalidInput, ModelUnavailable
from rgpu_translator import languages
from rgpu_translator.engine import TranslationEngine
from rgpu_translator.settings import TranslatorSettings
from rgpu_translator.text import split_text

#: The ISO 639-1 codes the reference SeamlessM4T translator mapped (its whole table).
REFERENCE_CODES = (
    "af am ar as az be bn bs bg ca ceb cs ku cy da de el en et eu fi fr ga gl gu he hi hr hu hy ig id is it jv ja kn "
    "ka kk km ky ko lo lt lg lv ml mr mk mt my nl nn nb ne ny or pa pl pt ro ru sk sl sn sd so es sr sv sw ta te tg "
    "tl th tr uk ur uz vi yo ms zu"
).split()


def test_nllb_table_covers_the_reference_languages():
    missing = [c for c in REFERENCE_CODES if c not in languages.NLLB_CODES]
    assert missing == []
    iso = {c for c in languages.NLLB_CODES if "-" not in c}
    assert len(iso) >= 95


@pytest.mark.parametrize(
    "code,expected",
    [
        ("en", "eng_Latn"),
        ("EN-us", "eng_Latn"),
        ("pt_BR", "por_Latn"),
        ("zh", "zho_Hans"),
        ("zh-TW", "zho_Hant"),
        ("fra_Latn", "fra_Latn"),
        ("xx", None),
        ("", None),
    ],
)
def test_nllb_code_mapping(code, expected):
    available = frozenset(languages.NLLB_CODES.values())
    assert languages.nllb_code(code, available) == expected


@pytest.mark.parametrize("code,expected", [("en", "en"), ("nb", "no"), ("zh-TW", "zh"), ("iw", "he"), ("xx", None)])
def test_m2m100_code_mapping(code, expected):
    assert languages.m2m100_code(code, frozenset({"en", "no", "zh", "he"})) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hello world. How are you?  Fine!\n\nNew paragraph.",
        "  leading space. trailing space.  ",
        "Un, deux; trois: quatre. Cinq!",
        "你好。世界！再见",
        "no punctuation at all " * 400,
        "x" * 3000,
    ],
)
def test_split_keeps_every_character_and_respects_the_limit(text):
    count = lambda s: len(s.split()) + len(s) // 40  # noqa: E731  (a crude token count)
    split = split_text(text, count, 30)
    assert split.source() == text
    assert all(count(p.text) <= 30 for p in split.pieces)
    assert all(p.text.strip() for p in split.pieces)


def _engine(tiny_models, family: str, model: str, **kw) -> TranslationEngine:
    return TranslationEngine(
        TranslatorSettings(engine=family, model=model, num_beams=1, device="cpu", cpu_threads=1, **kw)
    )


def test_split_with_the_real_tokenizer_stays_within_the_model_limit(tiny_models):
    engine = _engine(tiny_models, "marian", str(tiny_models / "opus-mt-en-fr"))
    engine.load()
    loaded = engine.ensure(engine.resolve("en", "fr").model)
    assert loaded.max_tokens <= 512
    text = " ".join(["the meeting starts now we talk about budget"] * 400) + ". Short one."
    split = split_text(text, lambda s: engine.count_tokens(loaded, s), loaded.max_tokens)
    assert split.source() == text and len(split.pieces) > 3
    enc = loaded.tokenizer([p.text for p in split.pieces])["input_ids"]
    assert max(len(ids) for ids in enc) <= loaded.max_tokens + 4


def test_m2m100_through_the_production_path(tiny_models):
    engine = _engine(tiny_models, "m2m100", str(tiny_models / "m2m100"))
    engine.load()
    route = engine.resolve("en-GB", "nb")
    assert (route.source, route.target) == ("en", "no")
    out = engine.translate_batch(route, ["Hello everyone.", "The meeting starts now, we talk about the budget."])
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    assert not any("__no__" in t for t in out)  # language tokens are not part of the text
    with pytest.raises(InvalidInput, match="supported languages:"):
        engine.resolve("en", "tlh")


def test_marian_lru_cache_is_bounded(tiny_models):
    engine = _engine(tiny_models, "marian", str(tiny_models), max_loaded_models=1)
    engine.load()
    for src, tgt in (("en", "fr"), ("fr", "en"), ("en", "fr")):
        route = engine.resolve(src, tgt)
        assert len(engine.translate_batch(route, ["Budget."])) == 1
        assert engine.loaded_models() == [route.model]
    assert engine.models_loaded == 3


def test_offline_hub_name_fails_with_a_clear_message(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time
    engine = TranslationEngine(
        TranslatorSettings(engine="nllb", model="facebook/nllb-200-distilled-600M", device="cpu")
    )
    with pytest.raises(ModelUnavailable, match="without network access, point REFLECTOR_GPU_TRANSLATOR_MODEL"):
        engine.load()


@pytest.mark.parametrize(
    "family,model,fragment",
    [
        ("nllb", "/nonexistent/nllb", "does not exist"),
        ("marian", "/nonexistent/marian", "does not exist"),
        ("marian", "Helsinki-NLP/opus-mt-en-fr", "template with {src} and {tgt}"),
    ],
)
def test_bad_model_configuration_is_explained(family, model, fragment):
    with pytest.raises(ModelUnavailable, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        TranslationEngine(TranslatorSettings(engine=family, model=model, device="cpu")).load()


def test_marian_directory_without_pairs_is_explained(tmp_path):
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelUnavailable, match="opus-mt-<src>-<tgt>"):
        TranslationEngine(TranslatorSettings(engine="marian", model=str(tmp_path), device="cpu")).load()


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="must be auto or one of"):
        TranslationEngine(TranslatorSettings(engine="seamless"))
