import pytest
import torch

from t2i.config import GANConfig
from t2i.gan.model import Discriminator, Generator


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes_at_every_power_of_two(size):
    config = GANConfig(noise_dim=8, text_projection=4, generator_channels=4, discriminator_channels=4)
    generator, discriminator = Generator(config, size, 6), Discriminator(config, size, 6)
    images = generator(torch.randn(3, 8), torch.randn(3, 6))
    assert images.shape == (3, 3, size, size) and images.abs().max() <= 1  # tanh
    assert discriminator(images, torch.randn(3, 6)).shape == (3,)  # one logit per image


def test_the_discriminator_reads_the_text():
    config = GANConfig(noise_dim=8, text_projection=4, generator_channels=4, discriminator_channels=4)
    discriminator = Discriminator(config, 16, 6).eval()
    x = torch.randn(2, 3, 16, 16)
    assert not torch.allclose(discriminator(x, torch.zeros(2, 6)), discriminator(x, torch.ones(2, 6)))


def test_spectral_norm_bounds_every_layer_of_the_discriminator():
    from t2i.gan.model import init_weights

    config = GANConfig(
        noise_dim=8, text_projection=4, generator_channels=4, discriminator_channels=8, spectral_norm=True
    )
    torch.manual_seed(0)
    discriminator = Discriminator(config, 16, 6)
    discriminator.apply(init_weights)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())
    for _ in range(30):  # one power iteration per training forward pass
        discriminator(torch.randn(2, 3, 16, 16), torch.randn(2, 6))
    layers = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    sigmas = [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() for m in layers]
    assert len(layers) == 5 and all(0.9 < s < 1.1 for s in sigmas), sigmas
