import torch

from t2i.config import TransformerConfig
from t2i.family_pipeline import filter_logits
from t2i.vq_transformer.model import TokenTransformer


def test_loss_falls_on_one_batch(fit_one_batch):
    torch.manual_seed(0)
    model = TokenTransformer(TransformerConfig(conditioning="cross", width=32, layers=2, heads=2), 16, 9, 8)
    tokens, text, mask = torch.randint(0, 16, (4, 9)), torch.randn(4, 5, 8), torch.ones(4, 5)
    losses = fit_one_batch(model, lambda step: model.loss(tokens, text, mask), optimizer=torch.optim.AdamW)
    assert losses[0] > 2.5 and losses[-1] < 0.3 * losses[0]  # from about log 16 = 2.77 nats


def test_the_cache_gives_the_logits_of_the_whole_sequence():
    torch.manual_seed(0)
    model = TokenTransformer(TransformerConfig(conditioning="cross", width=32, layers=2, heads=2), 16, 9, 8).eval()
    inputs, text, mask = torch.randint(0, 17, (2, 9)), torch.randn(2, 5, 8), torch.tensor([[1.0] * 5, [1, 1, 0, 0, 0]])
    whole = model(inputs, text, mask)
    caches = [{} for _ in model.blocks]
    stepwise = torch.cat([model(inputs[:, i : i + 1], text, mask, caches, start=i) for i in range(9)], 1)
    assert torch.allclose(whole, stepwise, atol=1e-5)
    changed = mask.clone()
    changed[1, 3] = 1  # a padding position is not attended to: un-masking it changes that caption's logits
    assert torch.equal(model(inputs, text, changed)[0], whole[0]) and not torch.allclose(
        model(inputs, text, changed)[1], whole[1]
    )


def test_the_sentence_embedding_starts_at_zero_and_reaches_every_position():
    torch.manual_seed(0)
    without = TokenTransformer(
        TransformerConfig(conditioning="cross", width=32, layers=2, heads=2, pooled_text=False), 16, 9, 8
    ).eval()
    model = TokenTransformer(TransformerConfig(conditioning="cross", width=32, layers=2, heads=2), 16, 9, 8).eval()
    missing, _ = model.load_state_dict(without.state_dict(), strict=False)
    assert missing == ["sentence.weight", "sentence.bias"]
    inputs, text, mask = torch.randint(0, 17, (2, 9)), torch.randn(2, 5, 8), torch.ones(2, 5)
    assert torch.equal(model(inputs, text, mask), without(inputs, text, mask))  # zero-initialised: no change yet
    torch.nn.init.normal_(model.sentence.weight)
    whole = model(inputs, text, mask)
    caches = [{} for _ in model.blocks]
    stepwise = torch.cat([model(inputs[:, i : i + 1], text, mask, caches, start=i) for i in range(9)], 1)
    assert torch.allclose(whole, stepwise, atol=1e-5) and not torch.allclose(whole, without(inputs, text, mask))


def test_top_k_and_top_p_keep_the_likeliest_codes():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, 2, 1.0)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, 0, 0.7)).tolist() == [[False, False, True, True]]  # 0.5 + 0.3 ≥ 0.7
    assert torch.isinf(filter_logits(logits, 0, 0.1)).tolist() == [[False, True, True, True]]  # the top one stays
    assert torch.equal(filter_logits(logits, 0, 1.0), logits)
