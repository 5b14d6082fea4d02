import torch

from t2i.autoencoder.model import load_autoencoder, reconstruct


def test_reconstruct_is_the_autoencoder_round_trip_in_any_batch_size(trained_tiny):
    vae = load_autoencoder(trained_tiny[0])
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        whole = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    assert torch.allclose(reconstruct(vae, x, batch_size=2), whole, atol=1e-5)
    assert not torch.allclose(whole, x, atol=0.05)  # a real round trip, not the identity
