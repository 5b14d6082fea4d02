"""The single-stream transformer (transformer.conditioning: stream, DALL-E's): one sequence [caption ; image]."""

import dataclasses

import pytest
import torch

from t2i.config import TransformerConfig, load_config
from t2i.families import load_pipeline
from t2i.family_pipeline import gumbel_noise
from t2i.training.token_prior import train_prior
from t2i.vq_transformer.model import TokenTransformer
from t2i.vq_transformer.settings import TokenSamplingSettings


def _model() -> TokenTransformer:
    torch.manual_seed(0)
    config = TransformerConfig(conditioning="stream", width=32, layers=2, heads=2)
    return TokenTransformer(config, num_codes=16, sequence_length=9, text_dim=8, text_vocabulary=50, text_length=6)


def _caption(batch: int):
    ids = torch.randint(1, 50, (batch, 6), generator=torch.Generator().manual_seed(4))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]] * batch)
    return ids * mask, mask  # padding id 0 after the words


def test_cached_logits_equal_uncached_ones():
    model, (ids, mask) = _model().eval(), _caption(2)
    tokens = torch.randint(0, 16, (2, 9), generator=torch.Generator().manual_seed(5))
    full = model(tokens[:, :-1], ids, mask)  # the caption, then t_1 … t_8: logits of t_1 … t_9
    assert full.shape == (2, 9, 16)
    caches = [{} for _ in model.blocks]
    stepped = [model(tokens[:, :0], ids, mask, caches)[:, -1]]  # the caption alone: t_1's logits
    for i in range(8):
        stepped.append(model(tokens[:, i : i + 1], ids, mask, caches, start=i)[:, -1])
    assert torch.allclose(torch.stack(stepped, 1), full, atol=1e-5)


def test_padding_is_a_learned_token_per_position_and_the_loss_weighs_the_caption(fit_one_batch):
    model, (ids, mask) = _model(), _caption(3)
    embedded = model.embed_caption(ids, mask)
    other_ids = ids.clone()
    other_ids[:, 4:] = 7  # what stands under the padding does not matter
    assert torch.equal(model.embed_caption(other_ids, mask), embedded)
    assert not torch.allclose(embedded[0, 4], embedded[0, 5])  # each position its own padding token
    tokens = torch.randint(0, 16, (3, 9), generator=torch.Generator().manual_seed(6))
    losses = fit_one_batch(model, lambda step: model.loss(tokens, ids, mask))
    assert losses[-1] < 0.5 * losses[0]
    model.text_loss_weight = 0.0  # the image's part alone
    image_only = model.loss(tokens, ids, mask).item()
    model.text_loss_weight = 1.0
    assert image_only != pytest.approx(model.loss(tokens, ids, mask).item())


def test_dalle_folder_samples_with_the_cache_as_without_and_draws_the_same_bytes(tiny_dalle):
    pipe = load_pipeline(tiny_dalle[0])
    assert pipe.family == "vq-transformer" and pipe.prior.stream and pipe.reads_caption_ids
    assert type(pipe.vqvae).__name__ == "DiscreteVAE"
    text, mask = pipe.encode_prompts(["a hat", "a goatee"], ["", ""], 1, guidance=3.0)
    gumbel = torch.stack([gumbel_noise((64, 64), k) for k in range(2)])
    for settings in (TokenSamplingSettings(guidance=3.0), TokenSamplingSettings(guidance=1.0, top_k=10, top_p=0.9)):
        rows = slice(None) if settings.guidance != 1 else slice(2, None)
        cached = pipe.sample_tokens(text[rows], mask[rows], gumbel, settings, use_cache=True)
        assert torch.equal(cached, pipe.sample_tokens(text[rows], mask[rows], gumbel, settings, use_cache=False))
    first = pipe(["She wears eyeglasses.", "He has a goatee."], seed=3, output_type="pt")
    assert torch.equal(first, pipe(["She wears eyeglasses.", "He has a goatee."], seed=3, output_type="pt"))


def test_resume_continues_exactly(tiny_dalle, straight_and_resumed):
    _, dvae, cache = tiny_dalle
    config = load_config("configs/dalle-tiny.yaml")
    training = dataclasses.replace(config.transformer_training, steps=12, checkpoint_every=6, sample_every=100)
    config.transformer_training = training
    straight, resumed = straight_and_resumed(lambda out: train_prior(config, cache, dvae, out))
    assert (straight / "transformer.safetensors").read_bytes() == (resumed / "transformer.safetensors").read_bytes()
