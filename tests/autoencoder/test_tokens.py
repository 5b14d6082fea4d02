import pytest
import torch

from t2i.autoencoder.cache import LatentCache
from t2i.autoencoder.tokens import TokenCache, cache_tokens, decode_tokens, load_token_autoencoder


def test_tokens_round_trip_through_the_cache(tiny_vq, tiny_faces):
    _, vq_dir, cache = tiny_vq
    vq, tokens, latents = load_token_autoencoder(vq_dir), TokenCache(cache, vq_dir), LatentCache(cache, vq_dir)
    rows, flips = torch.tensor([0, 1, 2]), torch.tensor([False, True, False])
    t = tokens.tokens(rows, flips)
    assert t.shape == (3, 64) and t.min() >= 0 and t.max() < vq.config.num_vq_embeddings  # 8×8 codes of 64
    with torch.no_grad():  # the decoder of the cached codes is the autoencoder's own round trip (decode quantizes)
        expected = vq.decode(latents.latents(rows, flips)).sample
    assert torch.allclose(decode_tokens(vq, t), expected, atol=1e-5)
    written = (cache / "tokens.safetensors").stat().st_mtime_ns
    assert cache_tokens(vq_dir, tiny_faces, cache) == cache  # made by this autoencoder from these images: reused
    assert (cache / "tokens.safetensors").stat().st_mtime_ns == written


def test_a_kl_autoencoder_or_a_stale_cache_is_refused(trained_tiny, tiny_vq, tmp_path):
    _, vq_dir, cache = tiny_vq
    with pytest.raises(ValueError, match="need a VQ autoencoder"):
        cache_tokens(trained_tiny[0], "unused", tmp_path)
    with pytest.raises(ValueError, match="another autoencoder"):
        TokenCache(cache, trained_tiny[0])
