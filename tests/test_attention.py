import torch

from t2i.attention import AttentionControl, token_alignment


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
