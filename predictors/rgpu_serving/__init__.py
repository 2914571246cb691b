"""Shared serving core for every reflector-gpu predictor.

Auth, audio decoding, upload streaming, URL fetching with an SSRF guard, VAD chunk planning,
word timing, dynamic batching, metrics and the KServe wiring live here once. The core imports
no engine: engines import the core and never each other.
"""

from . import torchaudio_compat as _torchaudio_compat

# Every engine imports the core first: torch libraries that import torchaudio (pyannote, NeMo,
# transformers) then survive a CUDA torchaudio next to CPU torch. Imports nothing by itself.
_torchaudio_compat.install()
