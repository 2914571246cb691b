"""The translator predictor: ``POST /translate`` plus KServe V1/V2 on the shared serving core.

Reflector's client sends ``text``, ``source_language`` and ``target_language`` as query
parameters; the reference servers read the two languages from the JSON body. Both work here:
a language in the body wins, the query fills in what the body lacks, and the reference's
defaults (``en`` -> ``fr``) apply when neither has it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Hashable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from prometheus_client import Counter

import rgpu_contract as contract
from rgpu_serving.batching import DynamicBatcher
from rgpu_serving.errors import ApiError, check_text
from rgpu_serving.metrics import BATCH_SIZE
from rgpu_serving.predictor import ReflectorPredictor, v1_instances
from rgpu_serving.settings import ServingSettings

from . import languages
from .engine import ModelUnavailable, Route, TranslationEngine
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


def _str_field(container: dict, name: str) -> str | None:
    value = container.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


class TranslatorPredictor(ReflectorPredictor):
    def __init__(self, name: str, engine: TranslationEngine, settings: ServingSettings):
        super().__init__(name, settings)
        self.engine = engine
        self.batcher: DynamicBatcher[str, str] = DynamicBatcher(
            self._run_batch,
            max_batch=engine.settings.batch_size,
            max_wait_s=engine.settings.max_batch_wait_ms / 1000,
            name=name,
        )

    def load_model(self) -> None:
        self.engine.load()

    def _run_batch(self, route: Hashable, texts: list[str]) -> list[str]:
        BATCH_SIZE.labels(self.name).observe(len(texts))
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
        r = APIRouter(tags=[self.name])
        r.add_api_route(
            contract.TRANSLATE_PATH,
            self.translate,
            methods=["POST"],
            openapi_extra=_OPENAPI,
            summary="Translate text (languages in the JSON body or the query)",
        )
        return r

    async def _params(self, request: Request) -> tuple[str, str, str]:
        body: dict[str, Any] = {}
        raw = await request.body()
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(400, f"the request body must be JSON: {exc}") from exc
            if not isinstance(parsed, dict):
                raise ApiError(400, "the request body must be a JSON object with source_language and target_language")
            body = parsed
        query = request.query_params
        text = query.get("text")
        if text is None:
            text = _str_field(body, "text")
        if text is None:
            raise ApiError(400, "text is required (as a query parameter)")
        source = _str_field(body, "source_language") or query.get("source_language") or DEFAULT_SOURCE
        target = _str_field(body, "target_language") or query.get("target_language") or DEFAULT_TARGET
        return text, source, target

    async def translate(self, request: Request) -> JSONResponse:
        self.require_ready()
        text, source, target = await self._params(request)
        with self.admission.admit():
            translated, sentences = await self.translate_text(text, source, target)
        result = {source: text}
        result[target] = translated
        return JSONResponse({"text": result}, headers={SENTENCES_HEADER: str(sentences)})

    # ---- KServe V1 / V2 protocol -------------------------------------------------------
    async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers=None) -> Any:
        """V1: ``{"instances": [{"text", "source_language"?, "target_language"?}]}`` ->
        ``{"predictions": [{"text": {src: original, tgt: translation}}]}``; V2: BYTES inputs
        ``text`` (one element per text), ``source_language``, ``target_language`` -> ``translation``."""
        self.require_ready()
        with self.admission.admit():
            if isinstance(payload, InferRequest):
                return await self._predict_v2(payload)
            instances = v1_instances(
                payload, "{'instances': [{'text': '...', 'source_language': 'en', 'target_language': 'fr'}]}"
            )
            if not all(isinstance(i, dict) and isinstance(i.get("text"), str) for i in instances):
                raise ApiError(400, "each instance needs a string 'text'")
            jobs = []
            for inst in instances:
                src = _str_field(inst, "source_language") or DEFAULT_SOURCE
                tgt = _str_field(inst, "target_language") or DEFAULT_TARGET
                jobs.append((inst["text"], src, tgt))
            done = await asyncio.gather(*(self.translate_text(*j) for j in jobs))
            predictions = []
            for (text, src, tgt), (translated, _) in zip(jobs, done, strict=True):
                result = {src: text}
                result[tgt] = translated
                predictions.append({"text": result})
            return {"predictions": predictions}

    async def _predict_v2(self, request: InferRequest) -> InferResponse:
        inputs = {i.name: i for i in request.inputs}
        if "text" not in inputs:
            raise ApiError(400, "V2 request needs a BYTES input named 'text'")

        def values(name: str, default: str) -> list[str]:
            data = inputs[name].data if name in inputs and inputs[name].data else [default]
            return [v.decode() if isinstance(v, bytes) else str(v) for v in data]

        texts = values("text", "")
        sources, targets = values("source_language", DEFAULT_SOURCE), values("target_language", DEFAULT_TARGET)
        pick = lambda vals, i: vals[i] if len(vals) > i else vals[0]  # noqa: E731
        done = await asyncio.gather(
            *(self.translate_text(t, pick(sources, i), pick(targets, i)) for i, t in enumerate(texts))
        )
        out = [translated for translated, _ in done]
        return InferResponse(
            response_id=request.id or "",
            model_name=self.name,
            infer_outputs=[InferOutput(name="translation", shape=[len(out)], datatype="BYTES", data=out)],
        )


def build_predictor(
    name: str = "translator",
    model_dir: str | None = None,
    settings: ServingSettings | None = None,
    translator: TranslatorSettings | None = None,
) -> TranslatorPredictor:
    engine = TranslationEngine(translator or TranslatorSettings(), model_dir=model_dir)
    return TranslatorPredictor(name, engine, settings or ServingSettings())


__all__ = ["Route", "TranslatorPredictor", "build_predictor"]
