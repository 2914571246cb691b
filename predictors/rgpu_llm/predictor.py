"""The LLM predictor: ``POST /llm`` and the OpenAI-compatible API on the shared serving core.

Every generation goes through one ``DynamicBatcher``: concurrent requests (and the ``n``
choices of one request) are decoded together by ``LLMEngine.generate``. Streaming requests get
their text from the inference thread through an asyncio queue as it is decoded.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

import rgpu_contract as contract
from rgpu_asr.batching import DynamicBatcher
from rgpu_serving.errors import ApiError
from rgpu_serving.metrics import BATCH_SIZE
from rgpu_serving.predictor import EnginePredictor
from rgpu_serving.protocol import InferRequest, InferResponse, v2_response, v2_strings
from rgpu_serving.settings import ServingSettings

from . import openai_api as oa
from .engine import GenParams, GenRequest, GenResult, LLMEngine
from .settings import LLMSettings

log = logging.getLogger("rgpu.llm")

#: KServe's OpenAI route prefix (``KSERVE_OPENAI_ROUTE_PREFIX``); the routes are served with and without it.
OPENAI_PREFIX = "/openai"
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
MODELS_PATH = "/v1/models"


class LLMRequest(BaseModel):
    """The seed's ``/llm`` body. ``gen_cfg`` takes generation parameters (transformers names)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str
    gen_schema: dict[str, Any] | str | None = None
    gen_cfg: dict[str, Any] | None = None


def _number(cfg: dict, key: str, kind: type, lo: float | None = None, hi: float | None = None):
    value = cfg.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))  # NaN/Infinity: Python's JSON parser accepts them
        or (kind is int and int(value) != value)
    ):
        raise ApiError(400, f"gen_cfg.{key} must be {'an integer' if kind is int else 'a finite number'}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(400, f"gen_cfg.{key} must be between {lo} and {hi}")
    return kind(value)


def _seed(seed: int) -> int:
    """Any integer seed, as the 64-bit value torch's generator takes (negative ones wrap as torch
    wraps them); a larger one would fail the whole batch it is decoded in."""
    return seed % 2**64


class LLMPredictor(EnginePredictor[LLMEngine]):
    v1_instance = LLMRequest
    v1_example = "{'instances': [{'prompt': '...', 'gen_schema'?: {...}, 'gen_cfg'?: {...}}]}"

    def __init__(self, name: str, engine: LLMEngine, settings: ServingSettings):
        super().__init__(name, engine, settings)
        s = engine.settings
        self.batcher: DynamicBatcher[GenRequest, GenResult] = DynamicBatcher(
            self._run_batch,
            max_batch=s.max_batch,
            max_wait_s=s.max_batch_wait_ms / 1000,
            name=name,
            on_batch=BATCH_SIZE.labels(name).observe,
        )
        self.created = oa.now()
        self._grammars: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._grammar_lock = threading.Lock()

    # ---- model -------------------------------------------------------------------------
    def _run_batch(self, _key: Hashable, items: list[GenRequest]) -> Sequence[GenResult | BaseException]:
        return self.engine.generate(items)

    def model_names(self) -> list[str]:
        extra = [n.strip() for n in self.engine.settings.served_model_names.split(",") if n.strip()]
        return list(dict.fromkeys([self.name, *extra]))

    # ---- routes ------------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter(tags=[self.name])
        # Registered before KServe's routes (rgpu_serving.app): the OpenAI list wins the path.
        r.add_api_route(
            MODELS_PATH,
            self.list_models,
            methods=["GET"],
            summary="OpenAI model list (shadows KServe's V1 list on this path)",
        )
        r.add_api_route(
            contract.LLM_PATH,
            self.llm,
            methods=["POST"],
            summary="Seed route: {prompt, gen_schema?, gen_cfg?} -> {text}",
        )
        for prefix in ("", OPENAI_PREFIX):
            r.add_api_route(
                prefix + CHAT_PATH, self.chat_completions, methods=["POST"], summary="OpenAI chat completions"
            )
            r.add_api_route(
                prefix + COMPLETIONS_PATH, self.completions, methods=["POST"], summary="OpenAI text completions"
            )
        r.add_api_route(OPENAI_PREFIX + MODELS_PATH, self.list_models, methods=["GET"], summary="OpenAI model list")
        r.add_api_route(
            OPENAI_PREFIX + MODELS_PATH + "/{model_id}", self.get_model, methods=["GET"], summary="OpenAI model"
        )
        return r

    async def list_models(self) -> dict:
        return oa.model_list(self.model_names(), self.created)

    async def get_model(self, model_id: str) -> dict:
        if model_id not in self.model_names():
            raise ApiError(404, f"model '{model_id}' not found; this server has {', '.join(self.model_names())}")
        return oa.model_list([model_id], self.created)["data"][0]

    # ---- helpers -----------------------------------------------------------------------
    async def _grammar(self, schema: Any) -> str | None:
        if schema is None:
            return None
        key = json.dumps(schema, sort_keys=True) if not isinstance(schema, str) else schema
        with self._grammar_lock:
            if key in self._grammars:
                self._grammars.move_to_end(key)
                return self._grammars[key]
        grammar = await asyncio.to_thread(self.engine.compile_schema, schema)
        with self._grammar_lock:
            self._grammars[key] = grammar
            while len(self._grammars) > 128:
                self._grammars.popitem(last=False)
        return grammar

    def _check_n(self, n: int) -> None:
        limit = self.engine.settings.max_n
        if n > limit:
            raise ApiError(400, f"n is {n}, over this server's limit of {limit} (REFLECTOR_GPU_LLM_MAX_N)")

    def _params(self, body: oa._Sampling, max_new: int, index: int = 0) -> GenParams:
        seed = _seed(body.seed + index) if body.seed is not None else None
        temperature = 1.0 if body.temperature is None else body.temperature
        return GenParams(max_new, temperature, body.top_p or 1.0, body.stops(), seed)

    def _model_id(self, requested: str | None) -> str:
        return requested if requested in self.model_names() else self.name

    async def _stream(self, route: str, requests: list[GenRequest], first, piece, final, tail) -> StreamingResponse:
        """SSE: ``first(i)`` per choice, ``piece(i, text)`` as text is decoded, ``final(i, result)``,
        ``tail(results)`` (usage), then ``[DONE]``. Admission is held until the stream ends."""
        admitted = self.admission.admit(route)
        await admitted.__aenter__()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def emitter(index: int):
            return lambda text: loop.call_soon_threadsafe(queue.put_nowait, (index, text))

        for i, req in enumerate(requests):
            req.emit = emitter(i)
        task = asyncio.ensure_future(self.batcher.submit(requests))
        task.add_done_callback(lambda _: queue.put_nowait(None))

        async def events():
            try:
                for i in range(len(requests)):
                    if (event := first(i)) is not None:
                        yield oa.sse(event)
                while (item := await queue.get()) is not None:
                    yield oa.sse(piece(*item))
                try:
                    results = task.result()
                except Exception as exc:
                    log.exception("streamed generation failed")
                    yield oa.sse(
                        {"error": {"message": f"generation failed: {type(exc).__name__}", "type": "server_error"}}
                    )
                    return
                for i, result in enumerate(results):
                    yield oa.sse(final(i, result))
                if (event := tail(results)) is not None:
                    yield oa.sse(event)
                yield oa.sse("[DONE]")
            finally:
                for req in requests:
                    req.cancelled = True  # a client that went away frees its batch rows
                if not task.done():
                    task.cancel()
                await admitted.__aexit__(None, None, None)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    # ---- OpenAI chat -------------------------------------------------------------------
    async def chat_completions(self, body: oa.ChatCompletionRequest):
        self.require_ready()
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        ids = await asyncio.to_thread(self.engine.encode_chat, messages)
        max_new = self.engine.check_budget(len(ids), body.budget(), self.engine.settings.default_max_tokens)
        grammar = await self._grammar(oa.response_schema(body.response_format))
        self._check_n(body.n)
        requests = [GenRequest(ids, self._params(body, max_new, i), grammar) for i in range(body.n)]
        cid, created, model = oa.new_id("chatcmpl"), oa.now(), self._model_id(body.model)
        if body.stream:

            def tail(results):
                if not body.include_usage():
                    return None
                event = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                }
                event["usage"] = oa.usage(len(ids), sum(r.completion_tokens for r in results))
                return event

            return await self._stream(
                CHAT_PATH,
                requests,
                first=lambda i: oa.chat_chunk(cid, model, created, i, {"role": "assistant", "content": ""}),
                piece=lambda i, text: oa.chat_chunk(cid, model, created, i, {"content": text}),
                final=lambda i, r: oa.chat_chunk(cid, model, created, i, {}, oa.finish(r.finish_reason)),
                tail=tail,
            )
        async with self.admission.admit(CHAT_PATH):
            results = await self.batcher.submit(requests)
        return JSONResponse(oa.chat_completion(cid, model, created, results, len(ids)))

    # ---- OpenAI text completions -------------------------------------------------------
    async def completions(self, body: oa.CompletionRequest):
        self.require_ready()
        prompt = body.prompt
        ids: list[int]
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            ids = [int(t) for t in prompt]
            vocab = self.engine.vocab_size()
            if not all(0 <= t < vocab for t in ids):  # the tokenizer and the embedding fail on these
                raise ApiError(400, f"prompt: token ids must be between 0 and {vocab - 1}")
            text_prompt = self.engine.tokenizer.decode(ids)
        else:
            if isinstance(prompt, list):
                if len(prompt) != 1:
                    raise ApiError(400, "prompt: send one prompt per request (a string or a list with one string)")
                text_prompt = str(prompt[0])
            else:
                text_prompt = str(prompt)
            ids = await asyncio.to_thread(self.engine.encode_text, text_prompt)
        if not ids:
            raise ApiError(400, "prompt is empty")
        max_new = self.engine.check_budget(len(ids), body.max_tokens, self.engine.settings.default_max_tokens)
        grammar = await self._grammar(oa.response_schema(body.response_format))
        self._check_n(body.n)
        requests = [GenRequest(ids, self._params(body, max_new, i), grammar) for i in range(body.n)]
        cid, created, model = oa.new_id("cmpl"), oa.now(), self._model_id(body.model)
        echo = text_prompt if body.echo else ""
        if body.stream:

            def tail(results):
                if not body.include_usage():
                    return None
                event = {"id": cid, "object": "text_completion", "created": created, "model": model, "choices": []}
                event["usage"] = oa.usage(len(ids), sum(r.completion_tokens for r in results))
                return event

            return await self._stream(
                COMPLETIONS_PATH,
                requests,
                first=lambda i: oa.text_chunk(cid, model, created, i, echo) if echo else None,
                piece=lambda i, text: oa.text_chunk(cid, model, created, i, text),
                final=lambda i, r: oa.text_chunk(cid, model, created, i, "", oa.finish(r.finish_reason)),
                tail=tail,
            )
        async with self.admission.admit(COMPLETIONS_PATH):
            results = await self.batcher.submit(requests)
        texts = [echo + r.text for r in results]
        return JSONResponse(oa.text_completion(cid, model, created, texts, results, len(ids)))

    # ---- the seed's /llm ---------------------------------------------------------------
    async def _generate_llm(self, prompt: str, gen_schema: Any, gen_cfg: dict | None) -> str:
        cfg = dict(gen_cfg or {})
        if not isinstance(gen_cfg, (dict, type(None))):
            raise ApiError(400, "gen_cfg must be an object")
        max_new = _number(cfg, "max_new_tokens", int, 1) or _number(cfg, "max_tokens", int, 1)
        temperature = _number(cfg, "temperature", float, 0.0, 2.0)
        top_p = _number(cfg, "top_p", float, 0.0, 1.0)
        seed = _number(cfg, "seed", int)
        do_sample = cfg.get("do_sample")
        if do_sample is False or (do_sample is None and temperature is None):
            temperature = 0.0  # greedy unless sampling is asked for, as transformers' generate does
        stop = cfg.get("stop", cfg.get("stop_strings")) or ()
        if not isinstance(stop, (str, list, tuple)):
            raise ApiError(400, "gen_cfg.stop must be a string or a list of strings")
        stop = (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)
        if self.engine.has_chat_template():
            ids = await asyncio.to_thread(self.engine.encode_chat, [{"role": "user", "content": prompt}])
        else:
            ids = await asyncio.to_thread(self.engine.encode_text, prompt)
        budget = self.engine.check_budget(len(ids), max_new, self.engine.settings.llm_default_max_new_tokens)
        grammar = await self._grammar(gen_schema)
        params = GenParams(
            budget,
            1.0 if temperature is None else temperature,
            top_p or 1.0,
            stop,
            None if seed is None else _seed(seed),
        )
        (result,) = await self.batcher.submit([GenRequest(ids, params, grammar)])
        if grammar is not None and result.finish_reason == "length":
            raise ApiError(
                422,
                f"the model did not complete the JSON within {budget} new tokens; raise gen_cfg.max_new_tokens "
                "or bound the schema (maxItems, maxLength)",
            )
        return result.text

    async def llm(self, body: LLMRequest) -> dict:
        self.require_ready()
        async with self.admission.admit(contract.LLM_PATH):
            return {"text": await self._generate_llm(body.prompt, body.gen_schema, body.gen_cfg)}

    # ---- KServe V1 / V2 protocol -------------------------------------------------------
    async def predict_v1(self, instances: list[LLMRequest]) -> list[Any]:
        """``[{"prompt", "gen_schema"?, "gen_cfg"?}]`` -> ``[{"text"}]``."""
        texts = await asyncio.gather(*(self._generate_llm(i.prompt, i.gen_schema, i.gen_cfg) for i in instances))
        return [{"text": t} for t in texts]

    async def predict_v2(self, request: InferRequest) -> InferResponse:
        """BYTES input ``prompt`` (one element per prompt) -> BYTES output ``text``."""
        prompts = v2_strings(request, "prompt", required=True)
        texts = await asyncio.gather(*(self._generate_llm(p, None, None) for p in prompts))
        return v2_response(request, self.name, {"text": list(texts)})


def build_predictor(
    name: str = "llm",
    model_dir: str | None = None,
    settings: ServingSettings | None = None,
    llm: LLMSettings | None = None,
    packaged: Callable[[], Path] | None = None,
) -> LLMPredictor:
    engine = LLMEngine(llm or LLMSettings(), model_dir=model_dir, packaged=packaged)
    return LLMPredictor(name, engine, settings or ServingSettings())
