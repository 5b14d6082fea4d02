"""Evaluation: attribute classifier, prompt-image alignment, Fréchet distance, reports."""
