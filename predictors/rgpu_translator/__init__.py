"""Text translation predictor (transformers: MarianMT per pair, NLLB-200 or M2M100) on the shared serving core."""
