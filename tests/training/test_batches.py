"""Batch plans and the sample grid's default prompts (t2i.training.batches)."""

import torch


def test_sample_grid_prompts_default_to_held_out_captions(tiny_cache):
    from t2i.autoencoder.cache import LatentCache
    from t2i.training.batches import held_out_captions

    cache = LatentCache(tiny_cache)
    prompts = held_out_captions(cache, 8)
    by_caption = {r["captions"][0]: r["split"] for r in cache.records}
    held_out = sum(r["split"] != "train" for r in cache.records)
    assert len(prompts) == 8 and all(by_caption[p] != "train" for p in prompts[: min(8, held_out)]) and held_out
    assert prompts == held_out_captions(cache, 8)


def test_batches_draw_caption_rewrites_and_token_dropout_is_seeded(tiny_cache):
    from t2i.autoencoder.cache import LatentCache
    from t2i.config import CaptionAugmentConfig
    from t2i.data.augment import rewrite
    from t2i.diffusion.train import text_inputs
    from t2i.training.batches import BatchPlan

    cache = LatentCache(tiny_cache)
    rows = [i for i, r in enumerate(cache.records) if r["split"] == "train"]
    augment = CaptionAugmentConfig(rewrites=1, face_shapes=True)
    plan = BatchPlan(cache, rows, seed=3, batch_size=64, cfg_dropout=0.0, captions_per_image=1, augment=augment)
    first = cache.records[rows[0]]["captions"][0]
    assert plan.captions(rows[0]) == [first, rewrite(first, 0, augment, 3)]
    _, captions, _ = plan.micro_batch(0)
    originals = {cache.records[i]["captions"][0] for i in rows}
    assert 0 < sum(c in originals for c in captions) < len(captions)  # both drawn

    class Cache:  # caption -> states of ones, with 5 real tokens
        def with_mask(self, captions):
            mask = torch.zeros(len(captions), 8, dtype=torch.long)
            mask[:, :5] = 1
            return torch.ones(len(captions), 8, 4), mask

    inputs = [
        text_inputs(
            ["a", "b"] * 50,
            None,
            Cache(),
            pooled=True,
            device=torch.device("cpu"),
            token_dropout=0.3,
            generator=torch.Generator().manual_seed(1),
        )
        for _ in range(2)
    ]
    assert torch.equal(inputs[0]["encoder_hidden_states"], inputs[1]["encoder_hidden_states"])  # same seed
    dropped = 1 - inputs[0]["encoder_hidden_states"][:, :5, 0].mean()
    assert 0.2 < dropped < 0.4 and "class_labels" in inputs[0]

    class Captions(Cache):  # and "" -> states of zeros
        def with_mask(self, captions):
            states, mask = super().with_mask(captions)
            return states * torch.tensor([c != "" for c in captions])[:, None, None], mask

    cpu, seed = torch.device("cpu"), torch.Generator().manual_seed(1)
    both = text_inputs(["a"] * 100, None, Captions(), pooled=True, device=cpu)
    sentence_only = text_inputs(
        ["a"] * 100, None, Captions(), pooled=True, device=cpu, generator=seed, sentence_only=0.3
    )
    alone = sentence_only["encoder_hidden_states"].abs().sum((1, 2)) == 0  # cross-attention sees "" ...
    assert 0.2 < alone.float().mean() < 0.4 and torch.equal(sentence_only["class_labels"], both["class_labels"])
    assert torch.equal(sentence_only["encoder_hidden_states"][~alone], both["encoder_hidden_states"][~alone])
