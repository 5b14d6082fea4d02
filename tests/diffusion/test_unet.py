import dataclasses

import torch
from torch.utils.flop_counter import FlopCounterMode

from t2i.config import load_config
from t2i.diffusion.unet import build_unet, denoise, sentence_token_count, takes_pooled_text
from t2i.text import unet_condition


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
    condition = unet_condition(torch.randn(2, 40, 384), torch.ones(2, 40), takes_pooled_text(unet))
    out = unet(torch.randn(2, 4, latent, latent), torch.tensor([1, 999]), **condition).sample
    assert out.shape == (2, 4, latent, latent)


@torch.no_grad()
def test_the_sentence_embedding_reaches_the_time_embedding_and_can_be_left_out():
    unet, latent, config = _unet("tiny")
    assert config.unet.pooled_text and takes_pooled_text(unet)  # on by default
    states, mask, z, t = (
        torch.randn(2, 40, 384),
        torch.ones(2, 40),
        torch.randn(2, 4, latent, latent),
        torch.tensor([9, 9]),
    )
    shorter = mask.clone()
    shorter[:, 20:] = 0  # the same token states, another mean: another sentence embedding
    a = unet(z, t, **unet_condition(states, mask, True)).sample
    assert torch.equal(a, unet(z, t, **unet_condition(states, shorter, True)).sample)  # zero-initialized: unused
    torch.nn.init.normal_(unet.class_embedding.linear_2.weight, std=0.02)  # as training moves it
    assert not torch.allclose(a, unet(z, t, **unet_condition(states, shorter, True)).sample)
    plain = build_unet(dataclasses.replace(config.unet, pooled_text=False), 4, latent, 384)
    assert not takes_pooled_text(plain) and plain.class_embedding is None
    assert sum(p.numel() for p in unet.parameters()) - sum(p.numel() for p in plain.parameters()) < 0.2 * sum(
        p.numel() for p in plain.parameters()
    )


@torch.no_grad()
def test_sentence_tokens_reach_cross_attention():
    unet, latent, config = _unet("tiny")
    assert not config.unet.sentence_tokens and sentence_token_count(unet) == 0  # off by default
    config.unet = dataclasses.replace(config.unet, pooled_text=False, sentence_tokens=True)
    unet = build_unet(config.unet, 4, latent, 384)
    assert sentence_token_count(unet) == 10 and not takes_pooled_text(unet)
    states, mask, z, t = (
        torch.randn(2, 40, 384),
        torch.ones(2, 40),
        torch.randn(2, 4, latent, latent),
        torch.tensor([9, 9]),
    )
    condition = unet_condition(states, mask, False, True)
    assert condition.keys() == {"encoder_hidden_states", "image_embeds"}
    other = unet_condition(states, mask, False, True, sentence=torch.randn(2, 384))  # the same tokens, another s(y)
    assert not torch.allclose(denoise(unet, z, t, condition), denoise(unet, z, t, other))


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
        unet(x, torch.tensor([500, 500], device="meta"), context, class_labels=context[:, 0])
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
