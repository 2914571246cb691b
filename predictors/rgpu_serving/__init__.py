"""The HTTP edge every reflector-gpu predictor shares: KServe adapters over ``rgpu_asr`` engines.

Auth (bearer keys, WebSocket included), the SSRF-guarded URL fetch, streamed uploads, typed
requests (OpenAI form, from-URL JSON, KServe V1/V2), error-to-status mapping, admission, metrics,
our FastAPI app with KServe's public V1/V2 routers, and the drain-first server. It imports no
engine, and importing it changes no global state.
"""
