"""Audio padding predictor (CPU): delay a track by prepending silence, as 48 kHz stereo Opus WebM."""
