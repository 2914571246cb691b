"""Speaker diarization predictor (pyannote.audio) on the shared serving core."""
