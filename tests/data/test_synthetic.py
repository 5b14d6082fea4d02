import hashlib

import numpy as np
import pytest
from PIL import Image

from t2i.data.captions import CELEBA_ATTRIBUTES
from t2i.data.check import read_attribute_file
from t2i.data.synthetic import (
    RENDERED_ATTRIBUTES,
    make_sample,
    render_face,
    sample_attributes,
    synthesize_dataset,
)


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


def test_same_arguments_give_byte_identical_files_whatever_the_worker_count(tmp_path):
    synthesize_dataset(tmp_path / "a", 10, 32, seed=3, workers=1)
    synthesize_dataset(tmp_path / "b", 10, 32, seed=3, workers=2)
    synthesize_dataset(tmp_path / "c", 10, 32, seed=4, workers=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_layout_and_attribute_file(tmp_path):
    out = synthesize_dataset(tmp_path / "d", 6, 64, seed=0, workers=1)
    assert sorted(p.name for p in (out / "CelebA-HQ-img").iterdir()) == [f"{i}.png" for i in range(6)]
    for i in range(6):
        lines = (out / "celeba-caption" / f"{i}.txt").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 10 and all(lines)
        assert Image.open(out / "CelebA-HQ-img" / f"{i}.png").size == (64, 64)
    text = (out / "CelebAMask-HQ-attribute-anno.txt").read_text().splitlines()
    assert text[0] == "6" and text[1].split() == list(CELEBA_ATTRIBUTES)
    assert text[2].startswith("0.png ") and len(text[2].split()) == 41
    rows = read_attribute_file(out / "CelebAMask-HQ-attribute-anno.txt")
    for name in set(CELEBA_ATTRIBUTES) - set(RENDERED_ATTRIBUTES):
        assert all(row[name] == -1 for row in rows.values())


def test_at_least_20_rendered_attributes_each_present_in_15_to_85_percent():
    assert len(RENDERED_ATTRIBUTES) >= 20
    rng = np.random.default_rng(0)
    draws = [sample_attributes(rng) for _ in range(4000)]
    for name in RENDERED_ATTRIBUTES:
        share = np.mean([d[name] == 1 for d in draws])
        assert 0.15 <= share <= 0.85, (name, share)


def test_dependencies_between_attributes():
    rng = np.random.default_rng(1)
    hair = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
    for _ in range(3000):
        a = sample_attributes(rng)
        assert sum(a[h] == 1 for h in hair) == (0 if a["Bald"] == 1 else 1)
        if a["Bald"] == 1:
            assert a["Bangs"] == -1 and a["Wavy_Hair"] == -1
        if a["Male"] == -1:
            assert a["Mustache"] == -1 and a["Goatee"] == -1 and a["No_Beard"] == 1
        assert (a["No_Beard"] == 1) == (a["Mustache"] == -1 and a["Goatee"] == -1)


@pytest.mark.parametrize("seed", range(3))
def test_rendered_attributes_change_the_pixels(seed):
    """Switching one attribute on, with every nuisance draw equal, changes a 64x64 image visibly."""
    base = {name: -1 for name in CELEBA_ATTRIBUTES} | {"Brown_Hair": 1, "Young": 1, "No_Beard": 1, "Male": 1}
    ref = np.asarray(make_face(base, seed), dtype=np.float32)
    skip = {"Male", "Young", "No_Beard", "Brown_Hair"}  # the base face has these; their opposites are below
    for name in sorted(set(RENDERED_ATTRIBUTES) - skip) + ["Old", "Female"]:
        changed = dict(base, **{name: 1}) if name in RENDERED_ATTRIBUTES else dict(base)
        if name == "Old":
            changed["Young"] = -1
        if name == "Female":
            changed["Male"] = -1
        if name in ("Black_Hair", "Blond_Hair", "Gray_Hair", "Bald"):
            changed["Brown_Hair"] = -1
        diff = np.abs(np.asarray(make_face(changed, seed), dtype=np.float32) - ref).max(axis=2)
        assert (diff > 40).sum() >= 5, name  # at least a few pixels change by more than 40/255


def make_face(attrs, seed):
    return render_face(attrs, np.random.default_rng(seed), 64)


def test_sizes():
    for size in (32, 64, 128, 256):
        assert make_sample(0, 1, size)[0].size == (size, size)


def test_part_maps_mark_what_is_drawn_and_leave_the_pictures_as_they_were(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from t2i.data.synthetic import PARTS, PARTS_FOLDER, synthesize_dataset

    plain = synthesize_dataset(tmp_path / "plain", 30, 64, seed=0, workers=1)
    with_parts = synthesize_dataset(tmp_path / "parts", 30, 64, seed=0, workers=1, parts=True)
    assert json.loads((with_parts / PARTS_FOLDER / "parts.json").read_text())["3"] == "hair"
    rows = (with_parts / "CelebAMask-HQ-attribute-anno.txt").read_text().splitlines()
    names = rows[1].split()
    for index in range(30):
        same = (plain / "CelebA-HQ-img" / f"{index}.png").read_bytes()
        assert (with_parts / "CelebA-HQ-img" / f"{index}.png").read_bytes() == same
        labels = np.asarray(Image.open(with_parts / PARTS_FOLDER / f"{index}.png"))
        values = dict(zip(names, map(int, rows[index + 2].split()[1:]), strict=True))
        shown = {PARTS[k] for k in np.unique(labels)}
        assert {"background", "skin", "eyes", "mouth"} <= shown
        assert ("eyeglasses" in shown) == (values["Eyeglasses"] == 1)
        assert ("hat" in shown) == (values["Wearing_Hat"] == 1)


def test_a_complete_synthesis_is_recognised_so_a_rerun_can_keep_it(tmp_path):
    from t2i.data.synthetic import is_synthesized

    assert not is_synthesized(tmp_path / "faces", 6, 32)
    synthesize_dataset(tmp_path / "faces", 6, 32, seed=1, workers=1)
    assert is_synthesized(tmp_path / "faces", 6, 32, seed=1)
    for other in ({"n": 7}, {"size": 64}, {"seed": 2}, {"parts": True}):
        assert not is_synthesized(tmp_path / "faces", **({"n": 6, "size": 32, "seed": 1} | other))
