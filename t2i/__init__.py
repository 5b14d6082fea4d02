"""t2i: text-to-image latent diffusion (the Stable Diffusion recipe) trained on captioned faces."""

__version__ = "0.1.0"
