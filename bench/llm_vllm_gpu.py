"""The LLM on KServe's Hugging Face runtime with vLLM (``llm.runtime: huggingface``), on a GPU
cluster: tokens/s and latency at 1, 4 and 16 concurrent Reflector-shaped requests.

Not part of ``python -m bench``: it needs a deployed ReflectorGPU with a GPU (vLLM cannot be
installed on the machines this project is built on, so it has not been run here). Run it from
anywhere that reaches the route, with the settings from the resource's status::

    export LLM_URL=https://gpu.example.com/llm/v1 LLM_MODEL=phi-4
    export LLM_API_KEY=$(kubectl -n reflector get secret reflector-gpu-apikey -o jsonpath='{.data.apikey}' | base64 -d)
    python bench/llm_vllm_gpu.py --concurrency 1 4 16 --requests 32 --out vllm.json

To compare runtimes on the same GPU and model, run it once with ``llm.runtime: huggingface`` and
once with ``custom`` (set ``LLM_MODEL=llm`` then).

Each request is what Reflector's LLM client sends for a summary/topic/title: a system prompt and
a long transcript excerpt (``--prompt-words``, default ~3000 words), ``response_format``
``json_schema``, ``litellm_session_id`` in the body, and no ``max_tokens`` (vLLM then uses the
remaining context; ``--max-tokens`` bounds it when a model rambles). Prompts differ per request
(so no prefix cache makes them free). Reported per concurrency level: completion tokens/s
(all requests together, from ``usage``), requests/s, latency p50/p95/max, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from typing import Any

import httpx

WORDS = (
    "we agreed to ship the release next week after the load test passes and the migration is reviewed "
    "the design team will share mockups for the onboarding flow and sales asked about pricing tiers "
    "budget for the offsite is approved but travel must be booked by friday and the on call rota changes "
    "customers reported slow uploads from the mobile app so engineering will profile the upload path"
).split()
SPEAKERS = ("Alice", "Bob", "Chen", "Dana")
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "topics": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"topic": {"type": "string"}, "start_speaker": {"type": "string"}},
                "required": ["topic", "start_speaker"],
            },
        },
    },
    "required": ["title", "summary", "topics"],
}


def transcript(seed: int, words: int) -> str:
    rng = random.Random(seed)
    lines, count = [], 0
    while count < words:
        n = rng.randint(8, 40)
        lines.append(f"{rng.choice(SPEAKERS)}: " + " ".join(rng.choice(WORDS) for _ in range(n)))
        count += n
    return "\n".join(lines)


def body(model: str, seed: int, words: int, max_tokens: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": model,
        "messages": [
            {
                "role": "system",
                "content": "You summarise meeting transcripts. Answer with JSON matching the schema.",
            },
            {"role": "user", "content": "Transcript:\n" + transcript(seed, words)},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "MeetingSummary", "schema": SCHEMA, "strict": True},
        },
        "temperature": 0.3,
        "litellm_session_id": f"bench-{seed}",  # Reflector's extra_body field; vLLM ignores it
    }
    if max_tokens:
        out["max_tokens"] = max_tokens
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def one(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> tuple[float, int, str | None]:
    start = time.perf_counter()
    try:
        response = await client.post(url, json=payload)
    except httpx.HTTPError as exc:
        return time.perf_counter() - start, 0, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        return elapsed, 0, f"{response.status_code}: {response.text[:200]}"
    data = response.json()
    try:
        json.loads(data["choices"][0]["message"]["content"])
    except (KeyError, ValueError) as exc:
        return elapsed, 0, f"not JSON: {exc}"
    return elapsed, int((data.get("usage") or {}).get("completion_tokens") or 0), None


async def level(args: argparse.Namespace, concurrency: int, seed0: int) -> dict[str, Any]:
    url = args.url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {args.key}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, timeout=args.timeout, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def run(i: int) -> tuple[float, int, str | None]:
            async with gate:
                return await one(client, url, body(args.model, seed0 + i, args.prompt_words, args.max_tokens))

        start = time.perf_counter()
        results = await asyncio.gather(*(run(i) for i in range(args.requests)))
        wall = time.perf_counter() - start
    ok = [(t, n) for t, n, err in results if err is None]
    errors = [err for _, _, err in results if err is not None]
    latencies = [t for t, _ in ok]
    tokens = sum(n for _, n in ok)
    return {
        "concurrency": concurrency,
        "requests": args.requests,
        "ok": len(ok),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": round(wall, 2),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1) if wall else 0.0,
        "requests_per_s": round(len(ok) / wall, 3) if wall else 0.0,
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "latency_max_s": round(max(latencies), 2) if latencies else None,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=os.environ.get("LLM_URL"), help="LLM_URL (…/llm/v1)")
    p.add_argument("--model", default=os.environ.get("LLM_MODEL"), help="LLM_MODEL (the served name)")
    p.add_argument("--key", default=os.environ.get("LLM_API_KEY"), help="LLM_API_KEY")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    p.add_argument("--prompt-words", type=int, default=3000, help="transcript words per prompt")
    p.add_argument("--max-tokens", type=int, default=None, help="unset (Reflector's way) by default")
    p.add_argument("--warmup", type=int, default=2, help="requests sent (one at a time) before measuring")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--out", default=None, help="write the results as JSON here too")
    args = p.parse_args(argv)
    missing = [name for name in ("url", "model", "key") if not getattr(args, name)]
    if missing:
        p.error("set " + ", ".join(f"--{m} (or LLM_{m.upper() if m != 'key' else 'API_KEY'})" for m in missing))
    return args


async def amain(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.warmup:
        warm = argparse.Namespace(**{**vars(args), "requests": args.warmup})
        await level(warm, 1, seed0=10_000)
    out = []
    for i, concurrency in enumerate(args.concurrency):
        result = await level(args, concurrency, seed0=i * 1000)
        print(json.dumps(result), flush=True)
        out.append(result)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    results = asyncio.run(amain(args))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"url": args.url, "model": args.model, "results": results}, f, indent=2)
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
