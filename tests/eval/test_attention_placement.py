import torch

from t2i.data.synthetic import synthesize_dataset
from t2i.eval.attention import measure_attention_placement, words


def test_word_pieces_are_joined_with_their_mean_map():
    maps = torch.arange(4.0).view(4, 1, 1).expand(4, 2, 2)
    joined = words(["she", "eye", "##glass", "##es"], maps)
    assert [w for w, _ in joined] == ["she", "eyeglasses"] and torch.equal(joined[1][1], torch.full((2, 2), 2.0))


def test_attention_placement_scores_parts_against_their_area(tiny_model, tmp_path):
    data = synthesize_dataset(tmp_path / "faces", 160, 32, seed=0, workers=1, parts=True)
    result = measure_attention_placement(tiny_model, data, tmp_path / "out", n_images=4, strength=0.5)
    assert result["images"] == 4 and "hair" in result["parts"]
    for part in result["parts"].values():
        assert part["words"] >= 1 and 0 <= part["share_inside"] <= 1 and 0 < part["floor"] < 1
    assert (tmp_path / "out" / "attention_placement.json").is_file()
