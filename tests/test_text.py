import logging
import shutil

import pytest
import torch
from transformers import BertConfig, BertModel

from t2i.config import TextConfig
from t2i.text import PretrainedTextEncoder, ScratchTextEncoder, default_text_encoder_path, load_text_encoder


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder(TextConfig(max_tokens=40))


def test_default_is_the_packaged_minilm_bert(minilm):
    assert minilm.hidden_size == 384 and minilm.model.config.model_type == "bert"
    assert not any(p.requires_grad for p in minilm.parameters())
    embeddings, mask = minilm.encode(["This man has a goatee.", ""])
    assert embeddings.shape == (2, 40, 384) and mask.shape == (2, 40)
    assert mask[1].sum() == 2  # the empty string is [CLS] [SEP]: the unconditional input
    same, _ = minilm.encode(["This man has a goatee."])
    assert torch.allclose(same[0], embeddings[0], atol=1e-5)
    other, _ = minilm.encode(["She wears eyeglasses."])
    assert (other[0] - embeddings[0]).abs().mean() > 0.05


def test_long_prompt_is_truncated_with_a_warning(minilm, caplog):
    with caplog.at_level(logging.WARNING):
        embeddings, mask = minilm.encode(["smiling " * 60])
    assert embeddings.shape[1] == 40 and mask.sum() == 40
    assert "token(s) were dropped" in caplog.text


def test_any_local_bert_folder(tmp_path):
    folder = tmp_path / "tiny-bert"
    BertModel(
        BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        shutil.copy(default_text_encoder_path() / name, folder / name)
    encoder = PretrainedTextEncoder(folder, max_tokens=16)
    embeddings, _ = encoder.encode(["a caption"])
    assert embeddings.shape == (1, 16, 32) and encoder.hidden_size == 32


def test_missing_folder_names_the_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match="--text-encoder"):
        load_text_encoder(TextConfig(path=str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match="text.kind"):
        load_text_encoder(TextConfig(kind="clever"))


def test_scratch_encoder_is_trainable():
    encoder = ScratchTextEncoder(default_text_encoder_path(), width=32, layers=1, heads=2, max_tokens=16)
    embeddings, mask = encoder.encode(["a goatee", ""])
    assert embeddings.shape == (2, 16, 32)
    embeddings.square().mean().backward()
    assert encoder.token_embedding.weight.grad.abs().sum() > 0
