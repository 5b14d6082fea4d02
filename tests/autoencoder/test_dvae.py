import torch
import torch.nn.functional as F

from t2i.autoencoder.dvae import DiscreteVAE, gumbel_temperature, kl_to_uniform
from t2i.autoencoder.model import build_autoencoder, encode, load_autoencoder
from t2i.autoencoder.train import autoencoder_losses
from t2i.config import load_config
from t2i.data.datasets import ImageCaptionDataset
from t2i.eval.autoencoder import evaluate_autoencoder


def test_gumbel_samples_turn_one_hot_as_the_temperature_falls_and_keep_the_encoders_argmax():
    logits = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(0)) * 3
    gumbel = -torch.log(-torch.log(torch.rand(logits.shape, generator=torch.Generator().manual_seed(1))))
    peaks = []
    for tau in (1.0, 0.25, 1 / 16):
        soft = ((logits + gumbel) / tau).softmax(1)  # y = softmax((l + g) / τ), what F.gumbel_softmax draws
        assert torch.equal(soft.argmax(1), (logits + gumbel).argmax(1))  # the Gumbel-max sample, at any τ
        peaks.append(soft.max(1).values.mean().item())
    assert peaks[0] < peaks[1] < peaks[2] and peaks[2] > 0.95
    noiseless = F.softmax(logits / (1 / 16), 1)  # with no noise the sample's code is the encoder's argmax
    assert torch.equal(noiseless.argmax(1), logits.argmax(1))
    taus = [gumbel_temperature(s, 1.0, 1 / 16, 100) for s in (0, 25, 50, 100, 200)]
    assert taus[0] == 1.0 and taus[-2] == taus[-1] == 1 / 16 and taus == sorted(taus, reverse=True)
    assert kl_to_uniform(torch.zeros(1, 16, 4, 4)).item() < 1e-5  # the uniform posterior is the prior


def test_tokens_are_the_argmax_and_the_latents_give_them_back(tiny_dalle):
    dvae = load_autoencoder(tiny_dalle[1])
    assert isinstance(dvae, DiscreteVAE)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        tokens = dvae.tokens(x)
        assert torch.equal(tokens, dvae.encoder(x).argmax(1))
        assert torch.equal(dvae.nearest_codes(encode(dvae, x)), tokens.flatten(1))


def test_the_dvae_loss_falls_on_one_batch(tiny_faces, fit_one_batch):
    config = load_config("configs/dalle-tiny.yaml")
    torch.manual_seed(0)
    model = build_autoencoder(config.autoencoder, 32)
    faces = ImageCaptionDataset(tiny_faces, 32, "train")
    x = torch.stack([faces.item(i, 0)["pixel_values"] for i in range(4)])

    def loss_at(step: int) -> torch.Tensor:
        _, nll, regularizer = autoencoder_losses(model, x, config, None, step)
        return nll + regularizer

    losses = fit_one_batch(model, loss_at, steps=80, lr=2e-3)
    assert losses[-1] < 0.6 * losses[0]


def test_eval_reports_the_codebook_of_a_dvae(tiny_dalle, tiny_faces, tmp_path):
    metrics = evaluate_autoencoder(tiny_dalle[1], tiny_faces, "val", tmp_path)
    assert 0 < metrics["codebook_used_share"] <= 1 and 1 <= metrics["codebook_perplexity"] <= 64
    assert metrics["psnr_db"] > 5 and (tmp_path / "reconstructions.png").is_file()
