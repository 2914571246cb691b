"""Shared serving core for every reflector-gpu predictor.

Auth, audio decoding, upload streaming, URL fetching with an SSRF guard, VAD chunk planning,
word timing, dynamic batching, metrics and the KServe wiring live here once. The core imports
no engine: engines import the core and never each other.
"""
