"""Translator predictor settings (environment prefix ``REFLECTOR_GPU_TRANSLATOR_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class TranslatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_TRANSLATOR_", extra="ignore", protected_namespaces=())

    #: ``nllb`` (NLLB-200, 200 languages), ``m2m100`` (100 languages) or ``marian`` (one
    #: opus-mt model per language pair, loaded on demand); ``auto`` tells it from the model's
    #: tokenizer class or name (NLLB when nothing is configured).
    engine: str = "auto"
    #: nllb/m2m100: a model directory or hub name (empty: the operator's ``REFLECTOR_GPU_MODEL``,
    #: then KServe's ``--model_dir`` when it holds a model, else the family's default hub model).
    #: marian: a directory holding one model, or a directory of ``opus-mt-{src}-{tgt}`` (or
    #: ``{src}-{tgt}``) model directories, or a hub name template with ``{src}`` and ``{tgt}``.
    model: str = ""
    #: marian with a hub template: the pairs offered (``en-fr,fr-en``); empty means any pair is
    #: attempted (and fails with a clear message when no such model can be had).
    pairs: str = ""
    #: Largest number of models kept loaded (marian loads one per pair, least recently used first out).
    max_loaded_models: int = 4
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto -> float16 on GPU, float32 on CPU
    #: Sentences per model call (dynamic batching across requests).
    batch_size: int = 16
    max_batch_wait_ms: float = 10.0
    num_beams: int = 4
    #: Longest input per model call in tokens; 0 -> the model's own limit (512 for Marian/NLLB).
    max_input_tokens: int = 0
    #: Longest text accepted per request, in characters (413 beyond).
    max_text_chars: int = 200_000
    #: Torch CPU threads (0: library default).
    cpu_threads: int = 0
