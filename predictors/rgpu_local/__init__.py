"""Local mode: every available predictor on one port, on CPU, with packaged models."""
