"""OpenAI-compatible request and response shapes (chat and text completions, model list).

KServe 0.21's own OpenAI support (``kserve.protocol.rest.openai``) re-exports vLLM's protocol
types and cannot be imported without vLLM, so the shapes are defined here; the routes follow
KServe's layout (also served under its ``/openai`` prefix). Unknown body fields are ignored, as
OpenAI-compatible clients (LlamaIndex ``OpenAILike``) send vendor extras.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rgpu_serving.errors import ApiError


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class ChatMessage(_Lenient):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type", "text") != "text":
                raise ApiError(400, f"message content of type '{part.get('type')}' is not supported; send text")
            parts.append(str(part.get("text", "")))
        return "".join(parts)


class _Sampling(_Lenient):
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if len(stops) > 4:
            raise ApiError(400, "stop: at most 4 sequences")
        return tuple(s for s in stops if s)

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    def budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] = Field(...)
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for text completions
    echo: bool = False


def response_schema(response_format: dict[str, Any] | None) -> Any | None:
    """The JSON Schema a ``response_format`` asks for, or None for free text."""
    if not response_format:
        return None
    kind = response_format.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise ApiError(400, "response_format.json_schema must be an object with a 'schema'")
        schema = spec.get("schema", spec.get("schema_"))
        if schema is None:
            raise ApiError(400, "response_format.json_schema.schema is required")
        return schema
    raise ApiError(400, f"response_format type '{kind}' is not supported; use text, json_object or json_schema")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"


def chat_completion(cid: str, model: str, created: int, results: list, prompt_tokens: int) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": r.text},
                "logprobs": None,
                "finish_reason": finish(r.finish_reason),
            }
            for i, r in enumerate(results)
        ],
        "usage": usage(prompt_tokens, sum(r.completion_tokens for r in results)),
    }


def chat_chunk(cid: str, model: str, created: int, index: int, delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def text_completion(cid: str, model: str, created: int, texts: list[str], results: list, prompt_tokens: int) -> dict:
    return {
        "id": cid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": i, "text": t, "logprobs": None, "finish_reason": finish(r.finish_reason)}
            for i, (t, r) in enumerate(zip(texts, results, strict=True))
        ],
        "usage": usage(prompt_tokens, sum(r.completion_tokens for r in results)),
    }


def text_chunk(cid: str, model: str, created: int, index: int, text: str, finish_reason: str | None = None) -> dict:
    return {
        "id": cid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def model_list(names: list[str], created: int, owner: str = "reflector-gpu") -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": created, "owned_by": owner} for n in names],
    }


def sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def now() -> int:
    return int(time.time())


Role = Literal["system", "user", "assistant", "tool", "developer"]
