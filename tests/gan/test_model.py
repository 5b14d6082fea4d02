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
