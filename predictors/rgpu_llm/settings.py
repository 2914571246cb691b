"""LLM predictor settings (environment prefix ``REFLECTOR_GPU_LLM_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LLMSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_LLM_", extra="ignore", protected_namespaces=())

    #: A transformers model directory, a ``.gguf`` file, or a hub name (needs network).
    #: Empty: KServe's ``--model_dir`` (``/mnt/models``), which may hold a model directory or one GGUF file.
    model: str = ""
    #: GGUF file inside ``model`` when it is a directory holding several.
    gguf_file: str = ""
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto -> bfloat16 on GPUs that support it, else float16; float32 on CPU
    #: Names the OpenAI routes list and accept besides the predictor name (comma-separated).
    served_model_names: str = ""
    #: Context length; 0: the model's ``max_position_embeddings``.
    context_length: int = 0
    #: ``max_tokens`` when a request gives none (OpenAI routes) and ``max_new_tokens`` for ``/llm``.
    default_max_tokens: int = 1024
    llm_default_max_new_tokens: int = 512
    #: Largest completion one request may ask for (``max_tokens`` / ``gen_cfg.max_new_tokens``;
    #: 400 beyond), so one client cannot hold the GPU for a whole context; 0: up to the context.
    max_tokens_limit: int = Field(0, ge=0)
    #: Largest ``n`` (choices per request, each decoded as its own row); at most 16.
    max_n: int = Field(16, ge=1, le=16)
    #: Requests decoded together in one batch, and how long a partial batch waits for more.
    max_batch: int = 8
    max_batch_wait_ms: float = 10.0
    #: torch CPU threads; 0 leaves torch's default.
    cpu_threads: int = 0
    trust_remote_code: bool = False
    #: Where hub downloads are cached; ``HF_HUB_OFFLINE=1`` forbids downloads.
    download_root: str | None = None
