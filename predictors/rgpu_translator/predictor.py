"""The translator predictor: ``POST /translate`` plus KServe V1/V2 on the shared serving core.

Reflector's client sends ``text``, ``source_language`` and ``target_language`` as query
parameters; the reference servers read the two languages from the JSON body. Both work here:
a language in the body wins, the query fills in what the body lacks, and the reference's
defaults (``en`` -> ``fr``) apply when neither has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, StrictStr

import rgpu_contract as contract
from rgpu_asr.batching import DynamicBatcher
from rgpu_asr.errors import ModelUnavailable, check_text
from rgpu_serving.errors import ApiError
from rgpu_serving.metrics import BATCH_SIZE
from rgpu_serving.predictor import EnginePredictor
from rgpu_serving.protocol import InferRequest, InferResponse, v2_response, v2_strings
from rgpu_serving.settings import ServingSettings

from . import languages
from .engine import Route, TranslationEngine
from .settings import TranslatorSettings
from .text import split_text

SENTENCES = Counter(
    "reflector_gpu_translation_sentences_total", "Sentences (pieces within the token limit) translated", ["predictor"]
)
CHARACTERS = Counter(
    "reflector_gpu_translation_characters_total", "Characters of source text translated", ["predictor"]
)

DEFAULT_SOURCE, DEFAULT_TARGET = "en", "fr"  # the reference server's defaults
#: Response header with the number of sentences the text was translated in (every one of them).
SENTENCES_HEADER = "X-Translation-Sentences"

_OPENAPI = {
    "parameters": [
        {"name": "text", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "source_language", "in": "query", "required": False, "schema": {"type": "string", "default": "en"}},
        {"name": "target_language", "in": "query", "required": False, "schema": {"type": "string", "default": "fr"}},
    ],
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"source_language": {"type": "string"}, "target_language": {"type": "string"}},
                }
            }
        },
    },
}


class TranslateBody(BaseModel):
    """The JSON body: the two languages (and, from other clients, the text)."""

    model_config = ConfigDict(extra="ignore")

    text: StrictStr | None = None
    source_language: StrictStr | None = None
    target_language: StrictStr | None = None


class TranslateInstance(BaseModel):
    """A KServe V1 instance."""

    model_config = ConfigDict(extra="ignore")

    text: StrictStr
    source_language: StrictStr | None = None
    target_language: StrictStr | None = None


def _pair(text: str, source: str, translated: str, target: str) -> dict[str, str]:
    """``{src: original, tgt: translation}`` (one key when both languages are the same)."""
    result = {source: text}
    result[target] = translated
    return result


class TranslatorPredictor(EnginePredictor[TranslationEngine]):
    v1_instance = TranslateInstance
    v1_example = "{'instances': [{'text': '...', 'source_language': 'en', 'target_language': 'fr'}]}"

    def __init__(self, name: str, engine: TranslationEngine, settings: ServingSettings):
        super().__init__(name, engine, settings)
        self.batcher: DynamicBatcher[str, str] = DynamicBatcher(
            self._run_batch,
            max_batch=engine.settings.batch_size,
            max_wait_s=engine.settings.max_batch_wait_ms / 1000,
            name=name,
            on_batch=BATCH_SIZE.labels(name).observe,
        )

    def _run_batch(self, route: Hashable, texts: list[str]) -> list[str]:
        return self.engine.translate_batch(route, texts)  # type: ignore[arg-type]

    # ---- the work --------------------------------------------------------------------------
    async def translate_text(self, text: str, source_language: str, target_language: str) -> tuple[str, int]:
        """The translation and the number of sentences it was done in (0: nothing to translate)."""
        if len(text) > self.engine.settings.max_text_chars:
            raise ApiError(
                413, f"text is {len(text)} characters, over the {self.engine.settings.max_text_chars}-character limit"
            )
        for field, value in (
            ("text", text),
            ("source_language", source_language),
            ("target_language", target_language),
        ):
            check_text(value, field)
        if not source_language.strip() or not target_language.strip():
            raise ApiError(400, "source_language and target_language must not be empty")
        if languages.normalize(source_language) == languages.normalize(target_language):
            return text, 0  # nothing to do: no model call
        route = self.engine.resolve(source_language, target_language)
        if not text.strip():
            return text, 0
        try:
            loaded = await asyncio.to_thread(self.engine.ensure, route.model)
        except ModelUnavailable as exc:
            raise ApiError(
                503,
                f"translation model for {source_language} -> {target_language} is unavailable: {exc}",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from exc
        split = await asyncio.to_thread(
            split_text, text, lambda s: self.engine.count_tokens(loaded, s), loaded.max_tokens
        )
        try:
            translations = await self.batcher.submit([p.text for p in split.pieces], key=route)
        except ModelUnavailable as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": str(self.settings.retry_after_s)}) from exc
        SENTENCES.labels(self.name).inc(len(split.pieces))
        CHARACTERS.labels(self.name).inc(len(text))
        return split.join(translations), len(split.pieces)

    # ---- routes ------------------------------------------------------------------------
    def router(self) -> APIRouter:
        gate = Depends(self.gate())
        r = APIRouter(tags=[self.name])

        @r.post(
            contract.TRANSLATE_PATH,
            openapi_extra=_OPENAPI,
            summary="Translate text (languages in the JSON body or the query)",
        )
        async def translate(
            _: None = gate,
            text: str | None = Query(None),
            source_language: str | None = Query(None),
            target_language: str | None = Query(None),
            body: TranslateBody | None = Body(None),
        ) -> JSONResponse:
            b = body or TranslateBody()
            text = text if text is not None else b.text
            if text is None:
                raise ApiError(400, "text is required (as a query parameter)")
            source = b.source_language or source_language or DEFAULT_SOURCE
            target = b.target_language or target_language or DEFAULT_TARGET
            translated, sentences = await self.translate_text(text, source, target)
            return JSONResponse(
                {"text": _pair(text, source, translated, target)}, headers={SENTENCES_HEADER: str(sentences)}
            )

        return r

    # ---- KServe V1 / V2 protocol -------------------------------------------------------
    async def predict_v1(self, instances: list[TranslateInstance]) -> list[Any]:
        """``[{"text", "source_language"?, "target_language"?}]`` ->
        ``[{"text": {src: original, tgt: translation}}]``."""
        jobs = [(i.text, i.source_language or DEFAULT_SOURCE, i.target_language or DEFAULT_TARGET) for i in instances]
        done = await asyncio.gather(*(self.translate_text(*j) for j in jobs))
        return [
            {"text": _pair(text, src, translated, tgt)}
            for (text, src, tgt), (translated, _) in zip(jobs, done, strict=True)
        ]

    async def predict_v2(self, request: InferRequest) -> InferResponse:
        """BYTES inputs ``text`` (one element per text), ``source_language``, ``target_language`` ->
        BYTES output ``translation``."""
        texts = v2_strings(request, "text", required=True)
        sources = v2_strings(request, "source_language", default=DEFAULT_SOURCE)
        targets = v2_strings(request, "target_language", default=DEFAULT_TARGET)

        def pick(values: list[str], i: int) -> str:
            return values[i] if len(values) > i else values[0]

        done = await asyncio.gather(
            *(self.translate_text(t, pick(sources, i), pick(targets, i)) for i, t in enumerate(texts))
        )
        return v2_response(request, self.name, {"translation": [translated for translated, _ in done]})


def build_predictor(
    name: str = "translator",
    model_dir: str | None = None,
    settings: ServingSettings | None = None,
    translator: TranslatorSettings | None = None,
) -> TranslatorPredictor:
    engine = TranslationEngine(translator or TranslatorSettings(), model_dir=model_dir)
    return TranslatorPredictor(name, engine, settings or ServingSettings())


__all__ = ["Route", "TranslatorPredictor", "build_predictor"]
