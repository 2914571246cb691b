"""Whisper transcription predictor (faster-whisper / CTranslate2) on the shared serving core."""
