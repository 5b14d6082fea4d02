"""Stage 1: the image autoencoder (KL or VQ), its training, evaluation and latent cache."""
