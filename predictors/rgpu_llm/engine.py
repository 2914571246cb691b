"""A transformers causal LM with a batched decoding loop, per-request sampling and JSON grammars.

Requests that arrive together are decoded as one left-padded batch sharing a KV cache: each row
keeps its own temperature, top-p, seed, stop strings, token budget and (optionally) an
llguidance matcher that masks the logits so the text always matches a JSON Schema. Finished rows
leave the batch at once (the cache is narrowed), so a short request never pays for a long one's
remaining steps. Tokens are handed to an ``emit`` callback as they are decoded (for streaming).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rgpu_asr.errors import InvalidInput, ModelUnavailable, check_text
from rgpu_asr.models import ModelFamily, hub_unavailable, resolve_model
from rgpu_asr.torchaudio_compat import import_torchaudio

from .settings import LLMSettings

log = logging.getLogger("rgpu.llm")

#: JSON compiler options: a fixed, compact layout (no free whitespace, which small models can
#: otherwise fill forever); a schema's own ``x-guidance`` options still apply on top.
JSON_DEFAULTS: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass
class GenParams:
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class GenRequest:
    prompt_ids: list[int]
    params: GenParams
    grammar: str | None = None  # llguidance grammar (from a JSON Schema)
    emit: Callable[[str], None] | None = None  # called from the inference thread with new text
    cancelled: bool = False  # set by the caller (client went away): the row leaves the batch


@dataclass
class GenResult:
    text: str
    finish_reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int


@dataclass
class _Row:
    req: GenRequest
    generator: Any
    matcher: Any = None
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    finish: str | None = None
    error: Exception | None = None


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def _llm_model(path: Path) -> Path | None:
    if path.is_file():
        return path if path.suffix.lower() == ".gguf" else None
    return path if (path / "config.json").is_file() or any(path.glob("*.gguf")) else None


FAMILY = ModelFamily(
    name="LLM",
    env="REFLECTOR_GPU_LLM_MODEL",
    expected="a transformers model directory (config.json), a .gguf file, or a directory holding one .gguf file",
    accepts=_llm_model,
)


def gguf_in(path: Path, gguf_file: str = "") -> tuple[str, str | None]:
    """``(directory, GGUF file name or None)`` for a local model the resolver accepted."""
    if path.is_file():
        return str(path.parent), path.name
    if gguf_file:
        if not (path / gguf_file).is_file():
            raise ModelUnavailable(f"GGUF file {gguf_file} not found in {path}")
        return str(path), gguf_file
    if (path / "config.json").is_file():
        return str(path), None
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    if len(ggufs) > 1:
        raise ModelUnavailable(
            f"{path} holds several GGUF files ({', '.join(ggufs)}); pick one with REFLECTOR_GPU_LLM_GGUF_FILE"
        )
    return str(path), ggufs[0]


class LLMEngine:
    def __init__(self, settings: LLMSettings, model_dir: str | None = None, packaged: Callable[[], Path] | None = None):
        self.settings = settings
        self.model_dir = model_dir
        self.packaged = packaged
        self.model: Any = None
        self.tokenizer: Any = None
        self.ll_tokenizer: Any = None
        self.device = "cpu"
        self.dtype_name = "float32"
        self.context_length = 0
        self.eos_ids: frozenset[int] = frozenset()
        self.pad_id = 0
        self.source = ""

    # ---- loading -----------------------------------------------------------------------
    def load(self) -> None:
        import_torchaudio()  # transformers may import torchaudio; see rgpu_asr.torchaudio_compat
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        s = self.settings
        choice = resolve_model(FAMILY, s.model, model_dir=self.model_dir, packaged=self.packaged)
        local = choice.local
        source, gguf = gguf_in(Path(choice.source), s.gguf_file) if local else (choice.source, s.gguf_file or None)
        self.device = s.device if s.device != "auto" else ("cuda" if has_cuda() else "cpu")
        if s.dtype != "auto":
            dtype = getattr(torch, s.dtype)
        elif self.device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        self.dtype_name = str(dtype).removeprefix("torch.")
        if s.cpu_threads > 0:
            torch.set_num_threads(s.cpu_threads)
        kwargs: dict[str, Any] = {"trust_remote_code": s.trust_remote_code}
        if s.download_root:
            kwargs["cache_dir"] = s.download_root
        if gguf:
            kwargs["gguf_file"] = gguf
        self.source = f"{source}/{gguf}" if gguf else source
        log.info("loading LLM %s on %s/%s", self.source, self.device, self.dtype_name)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
        except Exception as exc:
            if not local:
                raise hub_unavailable(FAMILY, choice, exc) from exc
            raise
        self.model.to(self.device)
        self.model.eval()
        cfg = self.model.config
        self.context_length = s.context_length or int(
            getattr(cfg, "max_position_embeddings", 0) or getattr(self.tokenizer, "model_max_length", 0) or 2048
        )
        eos: set[int] = set()
        for value in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(value, int):
                eos.add(value)
            elif isinstance(value, (list, tuple)):
                eos.update(int(v) for v in value)
        self.eos_ids = frozenset(eos)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (min(eos) if eos else 0)
        self._init_grammar()

    def _init_grammar(self) -> None:
        import llguidance.hf

        eos = sorted(self.eos_ids)
        self.ll_tokenizer = llguidance.hf.from_tokenizer(
            self.tokenizer, n_vocab=self.vocab_size(), eos_token=eos if len(eos) != 1 else eos[0]
        )

    def vocab_size(self) -> int:
        out = self.model.get_output_embeddings()
        return int(out.weight.shape[0]) if out is not None else int(self.model.config.vocab_size)

    # ---- prompts -----------------------------------------------------------------------
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        for m in messages:
            check_text(m["role"], "message role")
            check_text(m["content"], "message content")
        if self.has_chat_template():
            try:
                text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # template refused the conversation (e.g. roles out of order)
                raise InvalidInput(f"the model's chat template rejected the messages: {exc}") from exc
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_text(self, prompt: str) -> list[int]:
        check_text(prompt, "prompt")
        return list(self.tokenizer(prompt)["input_ids"])

    def check_budget(self, prompt_tokens: int, max_tokens: int | None, default: int) -> int:
        """The completion budget, or 400 when prompt + completion exceed the context length or the
        completion exceeds ``REFLECTOR_GPU_LLM_MAX_TOKENS_LIMIT``."""
        cap = self.settings.max_tokens_limit
        if cap:
            if max_tokens is not None and max_tokens > cap:
                raise InvalidInput(
                    f"max_tokens is {max_tokens}, over this server's limit of {cap} "
                    "(REFLECTOR_GPU_LLM_MAX_TOKENS_LIMIT)",
                )
            default = min(default, cap)
        limit = self.context_length
        if max_tokens is None:
            if prompt_tokens >= limit:
                raise InvalidInput(
                    f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
                    f"{prompt_tokens} tokens. Please reduce the length of the messages.",
                )
            return min(default, limit - prompt_tokens)
        if prompt_tokens + max_tokens > limit:
            raise InvalidInput(
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the "
                "completion). Please reduce the length of the messages or completion.",
            )
        return max_tokens

    # ---- JSON grammars -----------------------------------------------------------------
    def compile_schema(self, schema: Any) -> str:
        """An llguidance grammar that only admits JSON valid against ``schema`` (400 if unusable)."""
        from llguidance import LLMatcher

        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"the JSON schema is not valid JSON: {exc}") from exc
        if isinstance(schema, bool):
            schema = {} if schema else {"not": {}}
        if not isinstance(schema, dict):
            raise InvalidInput("the JSON schema must be an object")
        try:
            from jsonschema.validators import validator_for

            validator_for(schema).check_schema(schema)
        except ImportError:
            pass
        except Exception as exc:
            raise InvalidInput(f"invalid JSON schema: {getattr(exc, 'message', exc)}") from exc
        try:
            grammar = LLMatcher.grammar_from_json_schema(schema, defaults=JSON_DEFAULTS)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"unsupported JSON schema: {exc}") from exc
        error = LLMatcher.validate_grammar(grammar, self.ll_tokenizer)
        if error:
            raise InvalidInput(f"unsupported JSON schema: {error}")
        return grammar

    # ---- generation --------------------------------------------------------------------
    def generate(self, requests: list[GenRequest]) -> list[GenResult | Exception]:
        """Decode every request in one batch (called on the batcher's inference thread)."""
        import torch
        from llguidance import LLMatcher
        from transformers import DynamicCache

        assert self.model is not None, "model not loaded"
        rows = []
        for req in requests:
            row = _Row(req, None)
            try:
                row.generator = torch.Generator()
                row.generator.manual_seed(req.params.seed if req.params.seed is not None else random.getrandbits(63))
                row.matcher = LLMatcher(self.ll_tokenizer, req.grammar, log_level=0) if req.grammar else None
            except Exception as exc:  # noqa: BLE001 - this request fails, the batch goes on
                self._fail(row, exc)
            rows.append(row)

        lengths = [len(r.req.prompt_ids) for r in rows]
        width = max(lengths)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = lengths[i]
            ids[i, width - n :] = torch.tensor(r.req.prompt_ids, dtype=torch.long)
            mask[i, width - n :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        try:
            cache = DynamicCache(config=self.model.config)
        except TypeError:
            cache = DynamicCache()
        active = list(range(len(rows)))  # rows in the prompt pass; failed ones drop out after it
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            while True:
                logits = out.logits[:, -1, :].float().cpu()
                next_tokens = []
                for b, idx in enumerate(active):
                    row = rows[idx]
                    token = self.pad_id
                    if row.finish is None:
                        try:
                            token = self._pick(row, logits[b])
                            self._advance(row, token)
                        except Exception as exc:  # noqa: BLE001 - one request fails, not its batch
                            self._fail(row, exc)
                    next_tokens.append(token)
                keep = [b for b, idx in enumerate(active) if rows[idx].finish is None]
                if not keep:
                    break
                if len(keep) < len(active):
                    sel = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(sel)
                    mask = mask.index_select(0, sel)
                    positions = positions.index_select(0, sel)
                    next_tokens = [next_tokens[b] for b in keep]
                    active = [active[b] for b in keep]
                step = torch.tensor(next_tokens, dtype=torch.long, device=self.device).unsqueeze(-1)
                mask = torch.cat([mask, torch.ones_like(step)], dim=-1)
                positions = positions[:, -1:] + 1
                out = self.model(
                    input_ids=step, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True
                )
        return [
            r.error
            if r.error is not None
            else GenResult(r.text, r.finish or "length", len(r.req.prompt_ids), len(r.tokens))
            for r in rows
        ]

    @staticmethod
    def _fail(row: _Row, exc: Exception) -> None:
        """Stop decoding this row; the batcher hands ``exc`` to its caller alone."""
        log.error("generation failed for one request of the batch: %s: %s", type(exc).__name__, exc)
        row.error = exc
        row.finish = "error"

    def _pick(self, row: _Row, logits) -> int:
        import torch

        if row.matcher is not None:
            allowed = np.frombuffer(row.matcher.compute_logit_bias(), dtype=np.uint8)
            n = min(len(allowed), logits.shape[-1])
            blocked = torch.from_numpy(allowed[:n] == 0)
            logits[:n].masked_fill_(blocked, float("-inf"))
            if logits.shape[-1] > n:
                logits[n:] = float("-inf")
        p = row.req.params
        if p.temperature <= 1e-5:
            return int(torch.argmax(logits))
        logits = logits / p.temperature
        if p.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True)
            cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
            drop = cumulative - torch.softmax(sorted_logits, dim=-1) > p.top_p  # keep the first token always
            sorted_logits[drop] = float("-inf")
            logits = torch.full_like(logits, float("-inf")).scatter(0, order, sorted_logits)
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=row.generator))

    def _advance(self, row: _Row, token: int) -> None:
        p = row.req.params
        if row.matcher is not None:
            row.matcher.consume_token(token)
        if token in self.eos_ids:
            row.finish = "stop"
        else:
            row.tokens.append(token)
            row.text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
            if p.stop:
                hits = [row.text.find(s) for s in p.stop if s and s in row.text]
                if hits:
                    row.text = row.text[: min(hits)]
                    row.finish = "stop"
            if row.finish is None:
                if row.matcher is not None and (row.matcher.is_stopped() or row.matcher.is_error()):
                    row.finish = "stop"
                elif len(row.tokens) >= p.max_new_tokens:
                    row.finish = "length"
        if row.req.cancelled and row.finish is None:
            row.finish = "cancelled"
        self._emit(row)

    def _emit(self, row: _Row) -> None:
        if row.req.emit is None:
            return
        upto = len(row.text)
        if row.finish is None:
            hold = max((len(s) for s in row.req.params.stop), default=1) - 1  # could be a stop string's start
            upto -= hold
            while upto > row.emitted and row.text[upto - 1] == "\ufffd":  # an incomplete UTF-8 sequence
                upto -= 1
        if upto > row.emitted:
            piece = row.text[row.emitted : upto]
            row.emitted = upto
            row.req.emit(piece)
