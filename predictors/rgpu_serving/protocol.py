"""KServe's V1 and V2 inference bodies, parsed and answered in one place for every predictor.

V1: ``{"instances": [...]}`` where each predictor declares its instance as a pydantic model.
V2: named inputs; every input our predictors take is ``BYTES`` (strings, base64 audio), so an
input is read as a list of strings and outputs are written back the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ApiError

I = TypeVar("I", bound=BaseModel)  # noqa: E741


class V1Request(BaseModel, Generic[I]):
    model_config = ConfigDict(extra="ignore")

    instances: list[I] = Field(min_length=1)


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def parse_v1(payload: Any, instance: type[I], example: str) -> list[I]:
    """The typed ``instances`` of a V1 body (KServe hands over raw bytes, a str or a dict), or 400
    showing the expected shape."""
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise ApiError(400, f"request body is not JSON: {exc}") from exc
    try:
        return V1Request[instance].model_validate(payload).instances  # type: ignore[valid-type]
    except ValidationError as exc:
        raise ApiError(400, f"expected {example}: {_describe(exc)}") from exc


def v2_strings(request: InferRequest, name: str, default: str | None = None, required: bool = False) -> list[str]:
    """The elements of BYTES input ``name`` as strings; ``[default]`` (or 400) when it is absent."""
    for item in request.inputs:
        if item.name == name and item.data:
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in item.data]
    if required:
        raise ApiError(400, f"V2 request needs a BYTES input named '{name}'")
    return [] if default is None else [default]


def v2_response(request: InferRequest, model_name: str, outputs: dict[str, Sequence[str]]) -> InferResponse:
    """A V2 response of BYTES outputs, one element per input element."""
    return InferResponse(
        response_id=request.id or "",
        model_name=model_name,
        infer_outputs=[
            InferOutput(name=name, shape=[len(data)], datatype="BYTES", data=list(data))
            for name, data in outputs.items()
        ],
    )


__all__ = ["InferRequest", "InferResponse", "V1Request", "parse_v1", "v2_response", "v2_strings"]
