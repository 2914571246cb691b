"""LLM: our server vs a direct ``generate`` call, and batched vs sequential requests.

1. One request, greedy, up to 96 new tokens: tokens/s through ``/v1/chat/completions`` vs
   ``model.generate`` on the same prompt in this process (target: server >= 0.9x direct).
2. Eight different prompts sent concurrently (the server batches them) vs the same eight one
   after another (target: concurrent faster; the ratio is printed).
Same model (packaged SmolLM2-135M-Instruct, fp32 CPU) and the same torch thread count on both
sides (``LLM_BENCH_THREADS``, default 1: on a shared 2-core box spinning OpenMP threads make
2 threads far slower than 1).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import AUTH, REPEATS, REPO, allow_torchaudio, best_run, local_service, report

THREADS = int(os.environ.get("LLM_BENCH_THREADS", "1"))
MAX_TOKENS = 96
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "List some tips for a productive meeting.",
    "Describe the water cycle.",
    "What makes a good team leader?",
    "Summarise the plot of a detective novel you invent.",
    "Give advice to a new software engineer.",
    "Describe a busy market in the morning.",
]


def main() -> None:
    allow_torchaudio()  # before transformers, which imports torchaudio
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rgpu_local.llm_weights import fetch_wheel, smollm2_dir

    cache = REPO / ".cache"
    fetch_wheel(cache)
    model_dir = smollm2_dir(cache)
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-llm-bench-"))
    env = {
        "REFLECTOR_GPU_LOCAL_PREDICTORS": "llm",
        "REFLECTOR_GPU_LLM_MODEL": str(model_dir),
        "REFLECTOR_GPU_LLM_CPU_THREADS": str(THREADS),
        "REFLECTOR_GPU_LLM_MAX_BATCH": "8",
        "HF_HUB_OFFLINE": "1",
    }
    with local_service("llm", env, tmp / "uploads") as server:
        base = server.base
        torch.set_num_threads(THREADS)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        eos = tokenizer.eos_token_id

        def chat(prompt: str) -> dict:
            return {
                "model": "llm",
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": MAX_TOKENS,
                "temperature": 0,
            }

        def server_one() -> int:
            r = httpx.post(base + "/v1/chat/completions", json=chat(PROMPTS[0]), headers=AUTH, timeout=900)
            r.raise_for_status()
            return r.json()["usage"]["completion_tokens"]

        def direct_one() -> int:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": PROMPTS[0]}], tokenize=False, add_generation_prompt=True
            )
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            with torch.inference_mode():
                out = model.generate(**ids, max_new_tokens=MAX_TOKENS, do_sample=False, pad_token_id=eos)
            new = out[0, ids["input_ids"].shape[1] :].tolist()
            return len([t for t in new if t != eos])

        async def _concurrent() -> int:
            async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=900) as c:
                rs = await asyncio.gather(*(c.post("/v1/chat/completions", json=chat(p)) for p in PROMPTS))
            return sum(r.raise_for_status().json()["usage"]["completion_tokens"] for r in rs)

        def server_concurrent() -> int:
            return asyncio.run(_concurrent())

        def server_sequential() -> int:
            total = 0
            with httpx.Client(base_url=base, headers=AUTH, timeout=900) as c:
                for p in PROMPTS:
                    total += (
                        c.post("/v1/chat/completions", json=chat(p))
                        .raise_for_status()
                        .json()["usage"]["completion_tokens"]
                    )
            return total

        server_one()  # warm-up both sides
        direct_one()
        # alternate the two sides so a load spike on this shared machine hits both alike
        singles: dict[str, list[tuple[float, int]]] = {"server": [], "direct": []}
        for _ in range(max(REPEATS, 3)):
            for side, fn in (("server", server_one), ("direct", direct_one)):
                t0 = time.perf_counter()
                tokens = fn()
                singles[side].append((time.perf_counter() - t0, tokens))
        s_dt, s_tok = min(singles["server"])
        d_dt, d_tok = min(singles["direct"])
        c_dt, c_tok = best_run(server_concurrent)
        q_dt, q_tok = best_run(server_sequential, 1)
        results = {
            "server_single_s": s_dt,
            "server_single_tokens": s_tok,
            "server_tok_s": s_tok / s_dt,
            "direct_single_s": d_dt,
            "direct_single_tokens": d_tok,
            "direct_tok_s": d_tok / d_dt,
            "concurrent_8_s": c_dt,
            "concurrent_8_tokens": c_tok,
            "sequential_8_s": q_dt,
            "sequential_8_tokens": q_tok,
            "threads": THREADS,
        }

    r = results
    report(
        "llm",
        results,
        [
            f"SmolLM2-135M-Instruct fp32, CPU, {THREADS} torch thread(s), greedy, max {MAX_TOKENS} new tokens "
            f"(best of {REPEATS}; single requests best of {max(REPEATS, 3)}, alternated)",
            f"  one request: server {r['server_tok_s']:.1f} tok/s ({r['server_single_tokens']} tokens), "
            f"direct generate {r['direct_tok_s']:.1f} tok/s ({r['direct_single_tokens']} tokens) -> server/direct = "
            f"{r['server_tok_s'] / r['direct_tok_s']:.2f}x (target >= 0.9)",
            f"  8 different prompts: concurrent (batched) {r['concurrent_8_s']:.2f} s ({r['concurrent_8_tokens']} "
            f"tokens), sequential {r['sequential_8_s']:.2f} s ({r['sequential_8_tokens']} tokens) -> batched is "
            f"{r['sequential_8_s'] / r['concurrent_8_s']:.2f}x faster "
            f"({r['concurrent_8_tokens'] / r['concurrent_8_s']:.1f} vs "
            f"{r['sequential_8_tokens'] / r['sequential_8_s']:.1f} tok/s)",
        ],
    )


if __name__ == "__main__":
    main()
