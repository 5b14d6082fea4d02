"""What every family trains with: the training loop, the batch plans, the caption-embedding cache."""
