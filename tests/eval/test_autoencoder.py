import pytest
import torch

from t2i.eval.autoencoder import psnr, ssim


def test_psnr_of_known_error():
    x = torch.zeros(2, 3, 16, 16)
    y = x + 0.2  # 0.1 on [0, 1] pixels -> MSE 0.01 -> 20 dB
    assert torch.allclose(psnr(x, y), torch.tensor([20.0, 20.0]), atol=1e-4)


def test_ssim_is_one_for_identical_and_lower_for_noisy_images():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert (ssim(x, noisy) < 0.95).all()


def test_ssim_of_two_flat_images_is_the_luminance_term():
    x, y = torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.2)  # 0.5 and 0.6 on [0, 1] pixels
    expected = (2 * 0.5 * 0.6 + 0.01**2) / (0.5**2 + 0.6**2 + 0.01**2)
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-5)


def test_classifier_check_compares_originals_with_reconstructions(trained_tiny, tiny_faces, tiny_classifier):
    from t2i.eval.autoencoder import evaluate_autoencoder

    metrics = evaluate_autoencoder(trained_tiny[0], tiny_faces, "train", classifier_dir=tiny_classifier[0])
    per_attribute = metrics["classifier_accuracy_originals_per_attribute"]
    assert set(per_attribute) == set(tiny_classifier[1]["attributes"])
    mean = sum(per_attribute.values()) / len(per_attribute)
    assert metrics["classifier_accuracy_originals"] == pytest.approx(mean)
    assert 0 < metrics["classifier_accuracy_reconstructions"] <= 1
