import numpy as np
import pytest
import torch
from PIL import Image

from t2i.data.datasets import ImageCaptionDataset, load_pixels, split_of
from t2i.data.synthetic import synthesize_dataset


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("faces"), 60, 32, seed=0, workers=1)


def test_split_is_deterministic_and_near_the_fractions():
    ids = [str(i) for i in range(20000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    share = {s: splits.count(s) / len(ids) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.9) < 0.01 and abs(share["val"] - 0.05) < 0.01


def test_mmcelebahq_items(faces):
    train = ImageCaptionDataset(faces, 32, split="train")
    val = ImageCaptionDataset(faces, 32, split="val")
    test = ImageCaptionDataset(faces, 32, split="test")
    assert len(train) + len(val) + len(test) == 60
    assert not {r.id for r in train.records} & {r.id for r in test.records}
    item = train[0]
    x = item["pixel_values"]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert item["caption"] in train.records[0].captions
    assert item["attributes"].shape == (40,) and set(item["attributes"].tolist()) <= {-1, 1}


def test_caption_and_flip_are_random_per_epoch_but_reproducible(faces):
    ds = ImageCaptionDataset(faces, 32, split=None, flip=True, seed=1)
    epoch0 = [ds[i]["caption"] for i in range(20)]
    assert epoch0 == [ds[i]["caption"] for i in range(20)]
    ds.set_epoch(1)
    assert epoch0 != [ds[i]["caption"] for i in range(20)]
    flips = [not torch.equal(ds[i]["pixel_values"], load_pixels(ds.records[i].image, 32)) for i in range(20)]
    assert 3 <= sum(flips) <= 17


def test_resize_and_centre_crop(tmp_path):
    array = np.zeros((60, 120, 3), np.uint8)
    array[:, 30:90] = 255  # a white square in the middle of a wide image
    Image.fromarray(array).save(tmp_path / "wide.png")
    x = load_pixels(tmp_path / "wide.png", 30)
    assert x.shape == (3, 30, 30) and x.min() > 0.8  # the crop keeps only the white centre
    flipped = load_pixels(tmp_path / "wide.png", 30, flip=True)
    assert torch.equal(flipped, x.flip(-1))


def test_unknown_split_is_an_error(faces):
    with pytest.raises(ValueError, match="split"):
        ImageCaptionDataset(faces, 32, split="training")
