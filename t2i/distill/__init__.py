"""Few-step students: latent consistency distillation of a trained latent diffusion model (`t2i distill`)."""
