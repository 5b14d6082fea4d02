"""Stage 2: the text-conditioned latent diffusion model."""
