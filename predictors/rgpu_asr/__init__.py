"""The engine-agnostic core: audio, speech recognition pipeline, batching, model resolution.

Nothing here knows about HTTP, KServe or FastAPI: engines (``rgpu_whisper``, ``rgpu_parakeet``,
``rgpu_diarizer``, ...) build on it, the HTTP edge (``rgpu_serving``) maps its errors to status
codes, and the local mode composes both. Importing it changes no global state.

Modules, bottom up:

- ``types``: ``Word``, ``TextSegment``, ``ChunkTranscript``, ``Transcript``; every time in seconds
  from the start of the file (shifted by a caller's offset once, at the edge).
- ``errors``: what the core and engines raise (bad input, undecodable audio, model unavailable).
- ``audio``: format detection and decoding to 16 kHz mono float32 (PyAV), once per request.
- ``vad`` / ``chunking``: Silero VAD and the pure chunk planning for long audio.
- ``timing``: word-time arithmetic (chunk to file time, monotonic words).
- ``batching``: the dynamic batcher that gathers work from concurrent callers into model calls.
- ``engine``: the ``Engine`` protocol Whisper and Parakeet implement.
- ``transcriber``: plan, detect the language per request, batch, assemble a ``Transcript``.
- ``models``: the one resolver that decides what model a predictor loads.
- ``speakers``: speaker attribution (pure): a speaker on every word, segments, hints, matching
  known speakers' reference clips.
- ``diarization``: the ``Diarizer`` protocol speaker-attributed transcription calls, and running
  transcription and diarization at the same time.
"""
