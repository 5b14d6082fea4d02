import torch
from torch.utils.flop_counter import FlopCounterMode

from t2i.config import load_config
from t2i.diffusion.unet import build_unet


def _unet(preset, device="cpu"):
    config = load_config(f"configs/{preset}.yaml")
    latent = config.data.image_size // config.autoencoder.downsample_factor
    with torch.device(device):
        return build_unet(config.unet, config.autoencoder.latent_channels, latent, 384), latent, config


def test_presets_sizes():
    params = {p: sum(x.numel() for x in _unet(p, "meta")[0].parameters()) for p in ("tiny", "demo")}
    assert params["tiny"] < 1_000_000
    assert 5_000_000 <= params["demo"] <= 20_000_000


def test_tiny_forward_shapes():
    unet, latent, config = _unet("tiny")
    out = unet(torch.randn(2, 4, latent, latent), torch.tensor([1, 999]), torch.randn(2, 40, 384)).sample
    assert out.shape == (2, 4, latent, latent)


def test_celebahq256_on_the_meta_device(capsys):
    """Parameters, FLOPs per denoising step and an activation-memory estimate, without allocating anything."""
    unet, latent, config = _unet("celebahq256", "meta")
    params = sum(p.numel() for p in unet.parameters())
    batch = 2  # one step of classifier-free guidance: conditional + unconditional
    x = torch.randn(batch, 4, latent, latent, device="meta")
    context = torch.randn(batch, config.text.max_tokens, 384, device="meta")
    activations = 0

    def count(module, inputs, output):
        nonlocal activations
        if isinstance(output, torch.Tensor):
            activations += output.numel()

    hooks = [m.register_forward_hook(count) for m in unet.modules() if not list(m.children())]
    with FlopCounterMode(display=False) as flops:
        unet(x, torch.tensor([500, 500], device="meta"), context)
    for h in hooks:
        h.remove()
    gflops = flops.get_total_flops() / 1e9
    activation_gb = activations * 2 / 1e9  # bf16 training keeps roughly every leaf output for backward
    print(
        f"celebahq256 UNet: {params / 1e6:.0f}M parameters, {gflops:.0f} GFLOPs per CFG step (batch 2), "
        f"~{activation_gb:.1f} GB activations per 2 images in bf16"
    )
    assert 200e6 < params < 1e9
    assert 100 < gflops < 5000
    assert 0.1 < activation_gb < 50
