import pytest
import torch
from safetensors.torch import save_file

from t2i.autoencoder.losses import LPIPS, PatchDiscriminator, adaptive_weight, hinge_d_loss, reconstruction_loss


def test_reconstruction_loss_sums_per_image():
    x = torch.zeros(2, 3, 4, 4)
    assert reconstruction_loss(x, x + 0.5, 1.0, 0.0).item() == pytest.approx(0.5 * 48)
    assert reconstruction_loss(x, x + 0.5, 0.0, 1.0).item() == pytest.approx(0.25 * 48)


def test_hinge_loss_and_patch_logits():
    disc = PatchDiscriminator(16, 2)
    assert disc(torch.zeros(2, 3, 32, 32)).shape[:2] == (2, 1)
    assert hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)).item() == 0.0
    assert hinge_d_loss(torch.zeros(4), torch.zeros(4)).item() == 1.0


def test_adaptive_weight_is_the_gradient_norm_ratio():
    w = torch.ones(3, requires_grad=True)
    nll, g = (2 * w).sum(), (0.5 * w).sum()
    assert adaptive_weight(nll, g, w).item() == pytest.approx(4.0, rel=1e-3)


def test_lpips_loads_only_a_local_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="lpips_weights"):
        LPIPS(tmp_path / "missing.safetensors")
    torch.manual_seed(0)
    # a file laid out like lpips.LPIPS(net="vgg").state_dict(), with random weights
    reference = LPIPS.__new__(LPIPS)
    torch.nn.Module.__init__(reference)
    state = {}
    shapes = [
        (64, 3),
        (64, 64),
        (128, 64),
        (128, 128),
        (256, 128),
        (256, 256),
        (256, 256),
        (512, 256),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ]
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    slices = [1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]
    for (out, inp), i, s in zip(shapes, indices, slices, strict=True):
        state[f"net.slice{s}.{i}.weight"] = torch.randn(out, inp, 3, 3) * 0.05
        state[f"net.slice{s}.{i}.bias"] = torch.zeros(out)
    for i, c in enumerate((64, 128, 256, 512, 512)):
        state[f"lin{i}.model.1.weight"] = torch.rand(1, c, 1, 1)
    save_file(state, tmp_path / "lpips.safetensors")
    lpips = LPIPS(tmp_path / "lpips.safetensors")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert lpips(x, x).abs().max() < 1e-6
    assert (lpips(x, x.flip(-1)) > 0).all()
    save_file({"other": torch.zeros(1)}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="not an LPIPS"):
        LPIPS(tmp_path / "bad.safetensors")
