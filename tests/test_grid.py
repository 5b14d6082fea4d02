import torch
from PIL import Image

from t2i.grid import caption_lines, make_grid, to_pil


def test_to_pil_maps_minus_one_to_black_and_one_to_white():
    images = to_pil(torch.stack([torch.full((3, 4, 4), -1.0), torch.full((3, 4, 4), 1.0)]))
    assert images[0].getpixel((0, 0)) == (0, 0, 0) and images[1].getpixel((3, 3)) == (255, 255, 255)


def test_grid_layout_with_and_without_captions():
    images = [Image.new("RGB", (8, 8), (255, 0, 0))] * 5
    plain = make_grid(images, cols=4, cell=16)
    assert plain.size == (64, 32) and plain.getpixel((0, 0)) == (255, 0, 0)
    captioned = make_grid(images, ["a caption"] * 5, cols=4, cell=16, text_lines=2)
    assert captioned.size[0] == 64 and captioned.size[1] > 32


def test_long_captions_are_cut_with_an_ellipsis_short_ones_kept():
    assert caption_lines("a short one", 20, 2) == ["a short one"]
    lines = caption_lines("This woman has blond hair and wears a hat and a necklace and earrings.", 20, 2)
    assert len(lines) == 2 and lines[-1].endswith(" ...") and all(len(line) <= 20 for line in lines)
