import torch

from t2i.attention import AttentionControl, swapped_tokens, token_alignment


def test_token_alignment_maps_shared_tokens_one_to_one_and_a_swapped_word_to_its_source():
    same = token_alignment([1, 5, 6, 2, 0], [1, 5, 6, 2, 0])
    assert torch.equal(same, torch.eye(5))
    swap = token_alignment([1, 5, 6, 2, 0], [1, 5, 9, 2, 0])  # one word replaced by one
    assert torch.equal(swap, torch.eye(5))
    longer = token_alignment([1, 5, 6, 2, 0, 0], [1, 5, 7, 8, 2, 0])  # one word replaced by two pieces
    assert longer[2, 2] == longer[3, 2] == 1.0 and longer[4, 3] == 1.0 and longer[0, 0] == 1.0


def test_recorded_maps_sum_to_one_over_tokens_and_injection_copies_the_source():
    control = AttentionControl(images=2, guided=True, size=4, swap=torch.eye(3)[None], swap_steps=1)
    probs = torch.rand(2 * 2 * 2, 16, 3).softmax(-1)  # (halves · images · heads, 4×4 pixels, 3 tokens)
    out = control(probs, heads=2, cross=True).view(2, 2, 2, 16, 3)
    assert torch.equal(out[1, 1], out[1, 0]) and torch.equal(out[0], probs.view(2, 2, 2, 16, 3)[0])
    maps = control.maps(8)
    assert maps.shape == (2, 3, 8, 8) and torch.allclose(maps.sum(1), torch.ones(2, 8, 8), atol=1e-5)
    control.step = 1  # past the swap: the edited image keeps its own attention
    assert torch.equal(control(probs, heads=2, cross=True), probs)


def test_swapped_tokens_and_the_local_blend_mask():
    assert swapped_tokens([1, 5, 6, 2, 0], [1, 5, 9, 2, 0]) == ([2], [2])
    assert swapped_tokens([1, 5, 6, 2], [1, 5, 7, 8, 2]) == ([2], [2, 3])
    control = AttentionControl(images=2, guided=False, size=8)  # [source; edit], 3 tokens, an 8×8 latent
    control.sum, control.calls = torch.zeros(2, 3, 8, 8), 1
    control.sum[0, 1, :, :2] = 1.0  # the source's word attends to the two left columns
    control.sum[1, 2, :, 7] = 1.0  # the edit's word to the right column (and token 1 of the edit elsewhere)
    control.sum[1, 1, :, 4] = 1.0
    words = torch.tensor([[0.0, 1, 0], [0, 0, 1]])
    mask = control.blend_mask(words)[0, 0]  # the union, widened by one pixel (3×3 max-pool)
    assert mask.shape == (8, 8) and mask[:, :3].eq(1).all() and mask[:, 6:].eq(1).all()
    assert mask[:, 3:6].eq(0).all()  # token 1 is no swapped word of the edit
