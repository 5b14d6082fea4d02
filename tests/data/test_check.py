import json

import numpy as np
import pytest
from PIL import Image

from t2i.cli import main
from t2i.data.captions import CELEBA_ATTRIBUTES
from t2i.data.check import read_attribute_file, scan_dataset
from t2i.data.datasets import ImageCaptionDataset

# Three rows written by hand in the real CelebAMask-HQ-attribute-anno.txt format (note the double spaces
# that the real list_attr_celeba.txt uses to align positive values).
REAL_FORMAT = """3
5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young
0.jpg -1 1 1 -1 -1 -1 1 -1 -1 -1 -1 1 -1 -1 -1 -1 -1 -1 1 1 -1 1 -1 -1 1 -1 -1 1 -1 -1 -1 1 -1 -1 -1 -1 1 -1 -1 1
1.jpg  -1  -1  -1  -1  -1  -1  -1  -1  -1   1  -1  -1  -1  -1  -1  -1  -1  -1  -1   1  -1   1  -1  -1   1  -1  -1  -1  -1  -1  -1   1  -1  -1  -1  -1  -1  -1  -1   1
2.jpg 1 -1 -1 1 -1 -1 -1 1 1 -1 -1 -1 1 -1 -1 1 1 -1 -1 -1 1 -1 1 -1 -1 -1 -1 -1 -1 -1 1 -1 -1 -1 -1 -1 -1 -1 1 -1
"""  # noqa: E501


def test_attribute_file_parses_like_the_real_one(tmp_path):
    path = tmp_path / "CelebAMask-HQ-attribute-anno.txt"
    path.write_text(REAL_FORMAT)
    rows = read_attribute_file(path)
    assert list(rows) == ["0", "1", "2"]
    assert rows["0"]["Arched_Eyebrows"] == 1 and rows["0"]["Male"] == -1 and rows["0"]["Young"] == 1
    assert rows["1"]["Blond_Hair"] == 1 and rows["1"]["Smiling"] == 1
    assert rows["2"]["Male"] == 1 and rows["2"]["Goatee"] == 1 and rows["2"]["Wearing_Necktie"] == 1
    assert sum(v == 1 for v in rows["2"].values()) == 11


def test_attribute_file_count_mismatch_is_a_clear_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(REAL_FORMAT.replace("3\n", "4\n", 1))
    with pytest.raises(ValueError, match="says 4 images"):
        read_attribute_file(path)


def _rgb(size=40, value=128):
    return Image.fromarray(np.full((size, size, 3), value, np.uint8))


@pytest.fixture
def messy(tmp_path):
    """An MM-CelebA-HQ folder with one good image and one of each bad case."""
    root = tmp_path / "messy"
    img, cap = root / "CelebA-HQ-img", root / "celeba-caption"
    img.mkdir(parents=True)
    cap.mkdir()

    def captions(stem, data=b"A person with glasses.\nShe is smiling.\n"):
        (cap / f"{stem}.txt").write_bytes(data)

    good = _rgb()
    images = {
        "good.png": good,
        "gray.png": good.convert("L"),
        "rgba.png": Image.fromarray(np.full((40, 40, 4), 200, np.uint8), "RGBA"),
        "cmyk.jpg": good.convert("CMYK"),
        "sixteen.png": Image.fromarray(np.full((40, 40), 60000, np.uint16)),
        "palette.png": good.convert("P"),
        "small.png": _rgb(size=16),
        "nocap.png": good,
        "emptycap.png": good,
        "latin1.png": good,
        "good.jpg": good,  # the same id as good.png
    }
    for name, image in images.items():
        image.save(img / name)
    (img / "zero.png").write_bytes(b"")
    (img / "text.png").write_bytes(b"this is not an image")
    (img / "truncated.png").write_bytes((img / "good.png").read_bytes()[:60])
    for stem in ("good", "gray", "rgba", "cmyk", "sixteen", "palette", "small", "zero", "text", "truncated"):
        captions(stem)
    captions("emptycap", b"\n  \n")
    captions("latin1", "Elle a les cheveux boucl\u00e9s.".encode("latin-1"))
    return root


def test_each_bad_input_is_converted_or_skipped_and_counted(messy):
    report = scan_dataset(messy, size=32)
    assert sorted(r.id for r in report.records) == ["cmyk", "good", "gray", "palette", "rgba", "sixteen"]
    assert {k: len(v) for k, v in report.problems.items()} == {
        "empty_file": 1,
        "unreadable_image": 1,
        "corrupt_image": 1,
        "too_small": 1,
        "missing_captions": 1,
        "empty_captions": 1,
        "caption_not_utf8": 1,
        "duplicate_id": 1,
    }
    assert dict(report.converted) == {"L": 1, "RGBA": 1, "CMYK": 1, "I;16": 1, "P": 1}
    assert "zero.png" in report.problems["empty_file"][0]
    text = report.summary()
    assert "usable images: 6" in text and "skipped corrupt_image" in text and "truncated.png" in text


def test_sixteen_bit_and_alpha_convert_to_sensible_rgb(messy):
    from t2i.data.check import open_rgb

    image, mode = open_rgb(messy / "CelebA-HQ-img" / "sixteen.png")
    assert mode == "I;16" and image.mode == "RGB" and image.getpixel((0, 0)) == (233, 233, 233)  # 60000/257
    image, _ = open_rgb(messy / "CelebA-HQ-img" / "rgba.png")  # 200 at alpha 200/255 over white
    assert image.getpixel((0, 0)) == (212, 212, 212)


def test_check_command_exit_codes(messy, tmp_path, capsys):
    assert main(["data", "check", str(messy), "--size", "32"]) == 0
    assert "usable images: 6" in capsys.readouterr().out
    broken = tmp_path / "broken"
    (broken / "CelebA-HQ-img").mkdir(parents=True)
    (broken / "CelebA-HQ-img" / "0.png").write_bytes(b"")
    assert main(["data", "check", str(broken)]) == 1
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2


def test_imagefolder_and_manifests(tmp_path):
    root = tmp_path / "folder"
    (root / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png", "c.png"):
        _rgb().save(root / name)
    rows = [
        {"file_name": "a.png", "text": "one caption"},
        {"file_name": "sub/b.png", "text": ["first", "second"]},
        {"file_name": "c.png", "text": ""},
        {"file_name": "a.png", "text": "again"},
    ]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    report = scan_dataset(root, 32)
    assert report.source == "imagefolder"
    expected = [("a.png", ["one caption"]), ("sub/b.png", ["first", "second"])]
    assert [(r.id, r.captions) for r in report.records] == expected
    assert set(report.problems) == {"empty_captions", "duplicate_id"}

    (root / "list.csv").write_text('image,text\na.png,"a caption\nanother"\nsub/b.png,third\nmissing.png,x\n')
    report = scan_dataset(root / "list.csv", 32)
    assert report.source == "manifest"
    expected = [("a.png", ["a caption", "another"]), ("sub/b.png", ["third"])]
    assert [(r.id, r.captions) for r in report.records] == expected
    assert list(report.problems) == ["missing_image"]

    (root / "list.jsonl").write_text(json.dumps({"image": "c.png", "text": ["x", "y"]}) + "\n")
    report = scan_dataset(root / "list.jsonl", 32)
    assert [(r.id, r.captions) for r in report.records] == [("c.png", ["x", "y"])]


def test_manifest_rows_may_name_their_attributes_in_any_names(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        _rgb().save(tmp_path / name)
    rows = [
        {"file_name": "a.png", "text": "x", "attributes": {"left_red": 1, "right_red": -1}},
        {"file_name": "b.png", "text": "y", "attributes": {"left_red": "yes"}},  # kept, without attributes
        {"file_name": "c.png", "text": "z", "attributes": {"right_red": 1, "left_red": -1, "big": 1}},
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    report = scan_dataset(tmp_path, 32)
    assert report.attribute_names == ("left_red", "right_red", "big")
    assert [r.attributes for r in report.records] == [rows[0]["attributes"], None, rows[2]["attributes"]]
    assert list(report.problems) == ["bad_attributes"] and "left_red" in report.summary()
    data = ImageCaptionDataset(tmp_path, 32, split=None, random_caption=False)
    assert [data[i]["attributes"].tolist() for i in range(3)] == [[1, -1, 0], [0, 0, 0], [-1, 1, 1]]
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "text": "x", "attributes": {"Male": 1}}))
    assert scan_dataset(tmp_path, 32).attribute_names == CELEBA_ATTRIBUTES  # CelebA names keep CelebA's columns


def test_not_a_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a dataset"):
        scan_dataset(tmp_path, 32)


def test_check_reports_sizes_suggests_the_flag_and_warns_about_flips(tiny_faces, capsys):
    assert main(["data", "check", str(tiny_faces)]) == 1  # 32 px images, checked at the default 64 px
    out = capsys.readouterr().out
    assert "image sizes: 32x32 (120)" in out and "use --size 32" in out and "data.flip: false" in out
