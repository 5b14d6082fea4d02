import torch

from t2i.config import TextConfig
from t2i.text import load_text_encoder
from t2i.training.text_cache import TextEmbeddingCache, caption_key


def test_the_cache_counts_captions_as_it_encodes_them_and_reopens_without_work(tmp_path, capsys):
    encoder = load_text_encoder(TextConfig(max_tokens=12))
    captions = [f"she has {n} freckles" for n in range(10)]
    cache = TextEmbeddingCache(tmp_path, encoder, captions + captions[:3], shard_size=4)
    err = capsys.readouterr().err
    assert "11/11" in err and "caption" in err  # the 10 captions and "", each encoded once, counted as captions
    states, _ = encoder.encode(captions[:1])
    assert torch.allclose(cache.embeddings[cache.row[caption_key(captions[0])]].float(), states[0], atol=1e-2)
    again = TextEmbeddingCache(tmp_path, encoder, captions, shard_size=4)
    assert "cache text embeddings" not in capsys.readouterr().err  # nothing left to encode
    assert torch.equal(again.embeddings, cache.embeddings)


def test_the_encoder_identity_does_not_change_once_the_tokenizer_was_used():
    from t2i.training.text_cache import encoder_id

    encoder = load_text_encoder(TextConfig(max_tokens=12))
    before = encoder_id(encoder)
    encoder.encode(["she wears a hat"])  # sets padding and truncation on the fast tokenizer's backend
    assert encoder_id(encoder) == before
