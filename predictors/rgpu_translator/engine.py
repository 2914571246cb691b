"""Translation models behind ``/translate``: MarianMT per language pair, or one NLLB-200/M2M100.

Models are loaded lazily and kept in a bounded least-recently-used cache (Marian needs one model
per pair; the multilingual families are one model loaded at start so readiness is truthful).
``transformers`` and ``torch`` are imported only when a model is loaded.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rgpu_contract as contract
from rgpu_asr.errors import InvalidInput, ModelUnavailable
from rgpu_asr.models import ModelChoice, ModelFamily, hub_unavailable, resolve_model
from rgpu_asr.torchaudio_compat import import_torchaudio

from . import languages
from .settings import TranslatorSettings

log = logging.getLogger("rgpu.translator")

FAMILIES = contract.TRANSLATOR_ENGINES
#: Tokenizer classes (``tokenizer_config.json``) and name fragments that tell the family of a model.
_TOKENIZER_FAMILIES = {
    "NllbTokenizer": "nllb",
    "NllbTokenizerFast": "nllb",
    "M2M100Tokenizer": "m2m100",
    "MarianTokenizer": "marian",
}
_NAME_FAMILIES = (
    ("nllb", "nllb"),
    ("m2m100", "m2m100"),
    ("m2m_100", "m2m100"),
    ("opus-mt", "marian"),
    ("marian", "marian"),
)
DEFAULT_MODELS = {
    "nllb": "facebook/nllb-200-distilled-600M",
    "m2m100": "facebook/m2m100_418M",
    "marian": "Helsinki-NLP/opus-mt-{src}-{tgt}",
}
_PAIR_DIR = re.compile(r"(?:^|opus-mt-)([a-z]{2,3})-([a-z]{2,3})$", re.IGNORECASE)
#: Tokens kept free for the special tokens a model adds (language code, end of sentence).
_SPECIAL_MARGIN = 4


@dataclass(frozen=True)
class Route:
    """How one request's language pair is served: which model, with which model-side codes."""

    model: str  # model source (directory or hub name): the cache key
    source: str  # model-side source code (NLLB ``eng_Latn``, M2M100 ``en``, Marian ``en``)
    target: str
    prefix: str = ""  # Marian multi-target models want ``>>fr<<`` before the text


@dataclass
class Loaded:
    model: Any
    tokenizer: Any  # used by the inference thread only
    counter: Any  # a second tokenizer for counting tokens from request threads (Rust tokenizers
    #               must not be encoded with from two threads while one changes padding/language)
    max_tokens: int
    device: str
    lang_codes: frozenset[str] = frozenset()
    target_prefixes: frozenset[str] = frozenset()
    count_lock: threading.Lock = field(default_factory=threading.Lock)


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def _translation_model(path: Path) -> Path | None:
    """A model directory, or (Marian) a directory of per-pair model directories."""
    if not path.is_dir():
        return None
    if _is_model_dir(path) or any(_is_model_dir(sub) for sub in path.iterdir() if sub.is_dir()):
        return path
    return None


FAMILY = ModelFamily(
    name="translation",
    env="REFLECTOR_GPU_TRANSLATOR_MODEL",
    expected="a model directory (config.json + tokenizer), or for Marian a directory of opus-mt-<src>-<tgt> models",
    accepts=_translation_model,
)


def family_of(source: str) -> str | None:
    """The family a model belongs to: its tokenizer class when it is on disk, else its name."""
    path = Path(source)
    candidates = [path] + ([sub for sub in sorted(path.iterdir()) if sub.is_dir()] if path.is_dir() else [])
    for candidate in candidates:
        config = candidate / "tokenizer_config.json"
        if config.is_file():
            try:
                cls = str(json.loads(config.read_text()).get("tokenizer_class", ""))
            except (OSError, ValueError):
                continue
            if cls in _TOKENIZER_FAMILIES:
                return _TOKENIZER_FAMILIES[cls]
    name = source.lower()
    return next((family for fragment, family in _NAME_FAMILIES if fragment in name), None)


def _pair_of(name: str) -> tuple[str, str] | None:
    m = _PAIR_DIR.search(name)
    return (m.group(1).lower(), m.group(2).lower()) if m else None


class TranslationEngine:
    def __init__(self, settings: TranslatorSettings, model_dir: str | None = None):
        engine = settings.engine.strip().lower()
        if engine != "auto" and engine not in FAMILIES:
            raise ValueError(
                f"REFLECTOR_GPU_TRANSLATOR_ENGINE must be auto or one of {', '.join(FAMILIES)}; got '{settings.engine}'"
            )
        self.settings = settings
        #: The configured family ('auto': told by the model's tokenizer or name once it is resolved).
        self.engine = engine
        self.family = engine if engine != "auto" else "nllb"
        self.choice: ModelChoice | None = None
        self.model_dir = model_dir
        self.source = ""  # multilingual: the model; marian: directory root or hub template
        self.marian_pairs: dict[tuple[str, str], str] = {}  # (src, tgt) -> model source
        self.marian_template = ""
        self._cache: collections.OrderedDict[str, Loaded] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self.models_loaded = 0

    # ---- configuration -------------------------------------------------------------------
    def load(self) -> None:
        """Resolve the model (the one resolver: REFLECTOR_GPU_TRANSLATOR_MODEL, the operator's
        REFLECTOR_GPU_MODEL, --model_dir, the family's hub default), tell its family when the engine
        is ``auto``, and load what must be there at start (raises with the reason)."""
        import_torchaudio()  # transformers may import torchaudio; see rgpu_asr.torchaudio_compat
        self._torch_setup()
        default = DEFAULT_MODELS[self.engine if self.engine != "auto" else "nllb"]
        choice = resolve_model(FAMILY, self.settings.model, model_dir=self.model_dir, hub_default=default)
        detected = family_of(choice.source)
        if self.engine == "auto":
            self.family = detected or "nllb"
        elif detected and detected != self.engine:
            log.warning("REFLECTOR_GPU_TRANSLATOR_ENGINE=%s but %s looks like %s", self.engine, choice.source, detected)
        self.choice = choice
        log.info("translation model %s (from %s), family %s", choice.source, choice.origin, self.family)
        if self.family == "marian":
            self._configure_marian(choice.source)
            return
        self.source = choice.source
        self.ensure(choice.source)

    def _configure_marian(self, source: str) -> None:
        path = Path(source)
        pairs = [p.strip().lower() for p in self.settings.pairs.split(",") if p.strip()]
        if path.is_dir() and _is_model_dir(path):
            pair = _pair_of(path.name) or (tuple(pairs[0].split("-", 1)) if len(pairs) == 1 else None)
            if not pair:
                raise ModelUnavailable(
                    f"cannot tell the language pair of Marian model {path}: name the directory opus-mt-<src>-<tgt> "
                    "or set REFLECTOR_GPU_TRANSLATOR_PAIRS to the one pair it translates"
                )
            self.marian_pairs = {pair: str(path)}  # type: ignore[dict-item]
        elif path.is_dir():
            for sub in sorted(path.iterdir()):
                pair = _pair_of(sub.name)
                if pair and sub.is_dir() and _is_model_dir(sub):
                    self.marian_pairs[pair] = str(sub)
            if not self.marian_pairs:
                raise ModelUnavailable(
                    f"no Marian models in {path}: expected sub-directories named opus-mt-<src>-<tgt> (or <src>-<tgt>) "
                    "holding a saved model"
                )
        elif source.startswith(("/", "./", "../", "~")):
            raise ModelUnavailable(f"Marian model directory {source} does not exist")
        else:
            if "{src}" not in source or "{tgt}" not in source:
                raise ModelUnavailable(
                    f"a Marian hub model name must be a template with {{src}} and {{tgt}} "
                    f"(e.g. {DEFAULT_MODELS['marian']}); got '{source}'"
                )
            self.marian_template = source
            for p in pairs:
                src, _, tgt = p.partition("-")
                self.marian_pairs[(src, tgt)] = source.format(src=src, tgt=tgt)
        self.source = source
        log.info("Marian pairs: %s", ", ".join(f"{s}-{t}" for s, t in self.marian_pairs) or f"any ({source})")
        if self.marian_pairs and path.is_dir():
            self.ensure(
                next(iter(self.marian_pairs.values()))
            )  # a broken install shows at start, not on the first request

    def _torch_setup(self) -> None:
        if self.settings.cpu_threads > 0:
            import torch

            torch.set_num_threads(self.settings.cpu_threads)

    # ---- what is supported -----------------------------------------------------------------
    def supported(self) -> str:
        if self.family == "marian":
            if self.marian_pairs:
                return "supported pairs: " + ", ".join(f"{s}-{t}" for s, t in sorted(self.marian_pairs))
            return f"pairs are served by the models {self.marian_template}"
        loaded = self._cache.get(self.source)
        codes = languages.iso_codes_for(self.family, loaded.lang_codes) if loaded else []
        return "supported languages: " + ", ".join(codes)

    def resolve(self, source_language: str, target_language: str) -> Route:
        """The model and codes serving this pair, or 400 listing what is supported."""
        src, tgt = languages.normalize(source_language), languages.normalize(target_language)
        if self.family == "marian":
            key = (src.split("-")[0], tgt.split("-")[0])
            if key in self.marian_pairs:
                return Route(self.marian_pairs[key], key[0], key[1])
            if self.marian_template and not self.settings.pairs.strip():
                return Route(self.marian_template.format(src=key[0], tgt=key[1]), key[0], key[1])
            raise InvalidInput(f"unsupported language pair {source_language} -> {target_language}; {self.supported()}")
        loaded = self._cache.get(self.source)
        codes = loaded.lang_codes if loaded else frozenset()
        to_code = languages.nllb_code if self.family == "nllb" else languages.m2m100_code
        s, t = to_code(source_language, codes), to_code(target_language, codes)
        bad = [lang for lang, code in ((source_language, s), (target_language, t)) if code is None]
        if bad:
            raise InvalidInput(
                f"unsupported language pair {source_language} -> {target_language}: "
                f"{', '.join(repr(b) for b in bad)} not supported by {self.family}; {self.supported()}",
            )
        return Route(self.source, s, t)  # type: ignore[arg-type]

    # ---- models ------------------------------------------------------------------------
    def ensure(self, model: str) -> Loaded:
        """The loaded model for ``model`` (blocking: loads it on first use, evicting the oldest)."""
        with self._lock:
            hit = self._cache.get(model)
            if hit is not None:
                self._cache.move_to_end(model)
                return hit
            load_lock = self._load_locks[model]
        with load_lock:  # one load per model even when several requests want it at once
            with self._lock:
                hit = self._cache.get(model)
                if hit is not None:
                    return hit
            loaded = self._load(model)
            with self._lock:
                self._cache[model] = loaded
                self._cache.move_to_end(model)
                keep = {self.source} if self.family != "marian" else set()
                while len(self._cache) > max(1, self.settings.max_loaded_models):
                    victim = next((k for k in self._cache if k not in keep and k != model), None)
                    if victim is None:
                        break
                    log.info("evicting translation model %s", victim)
                    del self._cache[victim]
            return loaded

    def loaded_models(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def _device(self) -> tuple[str, Any]:
        import torch

        device = self.settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.settings.dtype
        if dtype == "auto":
            dtype = "float16" if device.startswith("cuda") else "float32"
        return device, getattr(torch, dtype)

    def _load(self, model: str) -> Loaded:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        device, dtype = self._device()
        log.info("loading translation model %s on %s", model, device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(model)
            counter = AutoTokenizer.from_pretrained(model)
            net = AutoModelForSeq2SeqLM.from_pretrained(model, dtype=dtype)
        except Exception as exc:
            if Path(model).is_dir():
                raise ModelUnavailable(
                    f"could not load translation model from {model}: {type(exc).__name__}: {exc}"
                ) from exc
            origin = self.choice.origin if self.choice else FAMILY.env
            raise hub_unavailable(FAMILY, ModelChoice(model, False, origin), exc) from exc
        net.to(device).eval()
        limits = [getattr(net.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
        limit = min(int(x) for x in limits if x and int(x) < 1_000_000) if any(limits) else 512
        if self.settings.max_input_tokens > 0:
            limit = min(limit, self.settings.max_input_tokens)
        codes: frozenset[str] = frozenset()
        if self.family == "nllb":
            flores = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")  # eng_Latn: special tokens, or at least in the vocab
            codes = frozenset(str(t) for t in tokenizer.all_special_tokens if flores.fullmatch(str(t)))
            codes = codes or frozenset(t for t in tokenizer.get_vocab() if flores.fullmatch(t))
        elif self.family == "m2m100":
            codes = frozenset(getattr(tokenizer, "lang_code_to_id", {}) or {})
        prefixes = frozenset(getattr(tokenizer, "supported_language_codes", []) or [])
        self.models_loaded += 1
        return Loaded(net, tokenizer, counter, max(8, limit - _SPECIAL_MARGIN), device, codes, prefixes)

    # ---- inference -----------------------------------------------------------------------
    def count_tokens(self, loaded: Loaded, text: str) -> int:
        with loaded.count_lock:
            return len(loaded.counter(text, add_special_tokens=False)["input_ids"])

    def translate_batch(self, route: Route, texts: list[str]) -> list[str]:
        """Blocking: one ``generate`` call for several sentences of one language pair."""
        import torch

        loaded = self.ensure(route.model)
        tok = loaded.tokenizer
        gen: dict[str, Any] = {"num_beams": max(1, self.settings.num_beams)}
        inputs = list(texts)
        if self.family == "marian":
            prefix = f">>{route.target}<<"
            if loaded.target_prefixes and prefix in loaded.target_prefixes:
                inputs = [f"{prefix} {t}" for t in inputs]
        else:
            tok.src_lang = route.source
            target_token = route.target if self.family == "nllb" else tok.get_lang_token(route.target)
            gen["forced_bos_token_id"] = tok.convert_tokens_to_ids(target_token)
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))  # less padding per call
        enc = tok([inputs[i] for i in order], return_tensors="pt", padding=True, truncation=False)
        enc = {k: v.to(loaded.device) for k, v in enc.items()}
        longest = int(enc["input_ids"].shape[1])
        gen["max_new_tokens"] = min(loaded.max_tokens + _SPECIAL_MARGIN, 2 * longest + 16)
        with torch.inference_mode():
            out = loaded.model.generate(**enc, **gen)
        if self.family == "m2m100":  # language tokens are not always marked special: drop them
            lang_ids = set((getattr(tok, "lang_code_to_id", None) or {}).values())
            rows = [[i for i in row.tolist() if i not in lang_ids] for row in out]
            decoded = tok.batch_decode(rows, skip_special_tokens=True)
        else:
            decoded = tok.batch_decode(out, skip_special_tokens=True)
        result = [""] * len(inputs)
        for pos, i in enumerate(order):
            result[i] = decoded[pos].strip()
        return result
