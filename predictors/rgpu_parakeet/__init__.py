"""Parakeet transcription predictor (NVIDIA NeMo FastConformer-TDT) on the shared serving core."""
