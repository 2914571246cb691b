"""LLM predictor (transformers causal LM): the seed's ``/llm`` route and an OpenAI-compatible API.

Chat and text completions (streamed or not), ``GET /v1/models``, JSON output constrained by a
JSON Schema (llguidance), batched generation across concurrent requests.
"""
