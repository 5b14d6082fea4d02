"""Hostile data: changed datasets under an old cache, paths out of the dataset, bombs, files that break
after the scan, malformed rows. Each case is skipped and counted, or refused with a message; never a
crash halfway, never silently wrong rows."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from t2i.autoencoder.cache import LatentCache, cache_latents
from t2i.autoencoder.model import load_autoencoder
from t2i.cli import main
from t2i.config import TextConfig
from t2i.data.check import scan_dataset
from t2i.data.datasets import ImageCaptionDataset, load_pixels
from t2i.data.synthetic import synthesize_dataset
from t2i.text import load_text_encoder
from t2i.training.text_cache import encoder_id


@pytest.fixture(scope="module")
def twelve(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("twelve"), 12, 32, seed=3, workers=1)


def _cache_matches_the_images(cache_dir, data_dir, vae_dir):
    """Every cached row's mean latent is the encoding of the image that now carries its id."""
    cache, model = LatentCache(cache_dir), load_autoencoder(vae_dir)
    for row, record in enumerate(cache.records):
        with torch.no_grad():
            mean = model.encode(load_pixels(data_dir / "CelebA-HQ-img" / f"{record['id']}.png", 32)[None])
        if not torch.allclose(cache.tensors["mean"][row], mean.latent_dist.mean[0], atol=1e-5):
            return False
    return True


def test_latent_cache_follows_the_data_not_the_folder(twelve, trained_tiny, tmp_path, caplog):
    vae_dir = trained_tiny[0]
    data = tmp_path / "data"
    shutil.copytree(twelve, data)
    cache_latents(vae_dir, data, tmp_path / "cache", shard_size=5, mixed_precision="no")
    images = sorted((data / "CelebA-HQ-img").iterdir())
    images[7].write_bytes(images[2].read_bytes())  # one image swapped for another's content
    cache_latents(vae_dir, data, tmp_path / "cache", shard_size=5, mixed_precision="no")
    assert "re-encoding shard 1" in caplog.text and "changed since it was encoded" in caplog.text
    assert _cache_matches_the_images(tmp_path / "cache", data, vae_dir)

    other = synthesize_dataset(tmp_path / "other", 12, 32, seed=4, workers=1)  # same count, other faces
    cache_latents(vae_dir, other, tmp_path / "cache", shard_size=5, mixed_precision="no")
    assert _cache_matches_the_images(tmp_path / "cache", other, vae_dir)
    for record in LatentCache(tmp_path / "cache").records:  # and each row carries its new image's captions
        assert record["captions"] == (other / "celeba-caption" / f"{record['id']}.txt").read_text().splitlines()

    fewer = tmp_path / "fewer"
    shutil.copytree(other, fewer)
    for image in sorted((fewer / "CelebA-HQ-img").iterdir())[4:]:
        image.unlink()
    cache_latents(vae_dir, fewer, tmp_path / "cache", shard_size=5, mixed_precision="no")
    assert len(LatentCache(tmp_path / "cache")) == 4 and len(list((tmp_path / "cache").glob("shard-*"))) == 1


def test_latent_cache_refuses_records_that_disagree_with_its_shards(twelve, trained_tiny, tmp_path):
    cache_latents(trained_tiny[0], twelve, tmp_path, shard_size=5, mixed_precision="no")
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    (tmp_path / "records.jsonl").write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match="disagree at row 0"):
        LatentCache(tmp_path)


def test_text_cache_identity_sees_a_tiny_weight_change():
    encoder = load_text_encoder(TextConfig())
    before = encoder_id(encoder)
    with torch.no_grad():
        encoder.model.embeddings.word_embeddings.weight[5, 0] += 1e-6  # sums agree to 6 digits
    assert encoder_id(encoder) != before


def _imagefolder(root, rows: list[str]):
    root.mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(root / "good.png")
    (root / "metadata.jsonl").write_bytes("\n".join(rows).encode() + b"\n")
    return root


def test_paths_outside_the_dataset_are_refused_and_counted(tmp_path):
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "outside.png")
    root = _imagefolder(
        tmp_path / "ds",
        [
            json.dumps({"file_name": "good.png", "text": "a face"}),
            json.dumps({"file_name": "../outside.png", "text": "escape"}),
            json.dumps({"file_name": str(tmp_path / "outside.png"), "text": "absolute"}),
            json.dumps({"file_name": "/etc/passwd", "text": "absolute"}),
            json.dumps({"file_name": "sub/../../outside.png", "text": "escape"}),
        ],
    )
    report = scan_dataset(root, 32)
    assert [r.image.name for r in report.records] == ["good.png"]
    assert len(report.problems["outside_dataset"]) == 4 and "metadata.jsonl:2" in report.problems["outside_dataset"][0]
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"image,text\nds/good.png,a face\n../x.png,up\n{tmp_path / 'outside.png'},abs\n")
    report = scan_dataset(manifest, 32)
    assert len(report.records) == 1 and len(report.problems["outside_dataset"]) == 2


def test_malformed_rows_are_skipped_with_file_and_line(tmp_path, capsys):
    rows = [
        json.dumps({"file_name": "good.png", "text": "a face"}),
        json.dumps({"text": "no file name"}),
        json.dumps({"file_name": 7, "text": "int"}),
        json.dumps({"file_name": None, "text": "null"}),
        "[1, 2]",
        '{"file_name": "good.png", "text": ',
    ]
    root = _imagefolder(tmp_path / "ds", rows)
    with (root / "metadata.jsonl").open("ab") as f:
        f.write(b"\xff\xfe not utf-8\n")
    report = scan_dataset(root, 32)
    assert len(report.records) == 1
    bad = report.problems["bad_row"]
    assert [b.split(":")[1] for b in bad] == ["2", "3", "4", "5", "6", "7"] and "not JSON" in bad[4]
    for name, text in (("no_image.csv", "path,text\na.png,x\n"), ("no_image.jsonl", '{"path": "a.png"}\n')):
        (tmp_path / name).write_text(text)
        assert main(["data", "check", str(tmp_path / name)]) == 1  # nothing usable: exit 1 with the summary
        assert "bad_row" in capsys.readouterr().out


def test_attribute_file_damage_is_counted_not_fatal(tiny_faces, tmp_path):
    data = tmp_path / "faces"
    shutil.copytree(tiny_faces, data)
    attribute_file = data / "CelebAMask-HQ-attribute-anno.txt"
    lines = attribute_file.read_text().splitlines()
    attribute_file.write_text("\n".join([*lines[:5], lines[5] + " 1", *lines[6:]]) + "\n")  # one row too long
    report = scan_dataset(data, 32)
    assert len(report.records) == 120 and len(report.problems["bad_attribute_row"]) == 1
    assert sum(r.attributes is None for r in report.records) == 1
    attribute_file.write_text("")
    report = scan_dataset(data, 32)
    assert len(report.records) == 120 and report.problems["bad_attribute_file"]


def test_decompression_bomb_is_skipped_and_named(tmp_path, capsys):
    root = _imagefolder(tmp_path / "ds", [json.dumps({"file_name": n, "text": "t"}) for n in ("good.png", "bomb.png")])
    Image.new("1", (20000, 20000)).save(root / "bomb.png")
    assert main(["data", "check", str(root), "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "usable images: 1" in out and "too_large" in out and "bomb.png" in out


def test_image_broken_after_the_scan_is_skipped_in_training_and_caching(
    twelve, trained_tiny, tmp_path, caplog, monkeypatch
):
    data = tmp_path / "data"
    shutil.copytree(twelve, data)
    dataset = ImageCaptionDataset(data, 32, split=None, random_caption=False)
    broken = dataset.records[3].image
    broken.write_bytes(broken.read_bytes()[:200])  # truncated after the scan
    item = dataset.item(3, 0)
    assert item["id"] == dataset.records[4].id and str(broken) in dataset.unreadable
    assert f"skipped {broken}" in caplog.text
    assert [dataset.item(i, 0)["id"] for i in range(12)].count(dataset.records[4].id) == 2
    shutil.copy(twelve / "CelebA-HQ-img" / broken.name, broken)
    from t2i.autoencoder import cache as cache_module

    def load_or_break(path, size, flip=False, sha1=""):  # the file breaks between the cache's scan and its encoding
        if path == broken:
            raise OSError("image file is truncated")
        return load_pixels(path, size, flip, sha1)

    monkeypatch.setattr(cache_module, "load_pixels", load_or_break)
    cache_latents(trained_tiny[0], data, tmp_path / "cache", shard_size=5, mixed_precision="no")
    cache = LatentCache(tmp_path / "cache")
    assert len(cache) == 11 and dataset.records[3].id not in [r["id"] for r in cache.records]


def test_symbolic_links_out_of_the_dataset_are_refused(tiny_faces, tmp_path):
    data = tmp_path / "faces"
    shutil.copytree(tiny_faces, data)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    images = sorted((data / "CelebA-HQ-img").iterdir())
    shutil.move(images[0], outside / images[0].name)
    images[0].symlink_to(outside / images[0].name)  # an image linked out
    caption = data / "celeba-caption" / f"{images[1].stem}.txt"
    caption.unlink()
    caption.symlink_to("/etc/passwd")  # a caption file linked to a system file
    report = scan_dataset(data, 32)
    assert sorted(report.problems["outside_dataset"]) == sorted(str(p) for p in images[:2])
    assert len(report.records) == 118 and all("root:" not in c for r in report.records for c in r.captions)
    root = _imagefolder(tmp_path / "ds", [json.dumps({"file_name": n, "text": "t"}) for n in ("good.png", "sub/x.png")])
    (root / "sub").symlink_to(outside)  # a subfolder linked out
    shutil.copy(outside / images[0].name, outside / "x.png")
    report = scan_dataset(root, 32)
    assert [r.image.name for r in report.records] == ["good.png"] and len(report.problems["outside_dataset"]) == 1


def test_one_bad_manifest_row_never_aborts_the_scan(tmp_path):
    root = _imagefolder(
        tmp_path / "ds",
        [
            json.dumps({"file_name": "x" * 300 + ".png", "text": "t"}),
            json.dumps({"file_name": "good.png", "text": "t"}),
        ],
    )
    report = scan_dataset(root, 32)
    assert [r.image.name for r in report.records] == ["good.png"] and "over 255 bytes" in report.problems["bad_row"][0]
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,text\nds/good.png,a face\nds/good.png," + "y" * 140_000 + "\nds/./good.png,again\n")
    report = scan_dataset(manifest, 32)
    assert len(report.records) == 1 and "field larger than field limit" in report.problems["bad_row"][0]
    assert len(report.problems["duplicate_id"]) == 1  # ds/./good.png is ds/good.png


def test_csv_quirks_a_byte_order_mark_and_an_unterminated_quote(tmp_path):
    _imagefolder(tmp_path / "ds", [json.dumps({"file_name": "good.png", "text": "t"})])
    manifest = tmp_path / "bom.csv"
    manifest.write_bytes("image,text\nds/good.png,a face\n".encode("utf-8-sig"))
    assert [r.captions for r in scan_dataset(manifest, 32).records] == [["a face"]]
    manifest = tmp_path / "quote.csv"
    manifest.write_text('image,text\nds/good.png,"a face\nds/good.png,another\n')
    report = scan_dataset(manifest, 32)
    assert report.records == [] and "unexpected end of data" in report.problems["bad_row"][0]  # not one merged row


def test_a_tiny_image_does_not_set_the_advised_size(tmp_path, capsys):
    names = [f"{i}.png" for i in range(20)]
    root = _imagefolder(tmp_path / "ds", [json.dumps({"file_name": n, "text": "t"}) for n in names])
    for name in names[1:]:
        Image.fromarray(np.full((48, 48, 3), 90, np.uint8)).save(root / name)
    Image.new("RGB", (1, 1)).save(root / "0.png")
    assert main(["data", "check", str(root), "--size", "64"]) == 1  # nothing usable at 64
    out = capsys.readouterr().out
    assert "use --size 48" in out and "19 of 20 images are at least that" in out and "--size 1 " not in out


def test_images_replaced_after_the_scan_are_not_trained_on(twelve, tmp_path, caplog):
    data = tmp_path / "data"
    shutil.copytree(twelve, data)
    dataset = ImageCaptionDataset(data, 32, split=None, random_caption=False)
    replaced = dataset.records[2].image
    Image.new("RGB", (1, 1)).save(replaced)  # a valid image, not the scanned one
    assert dataset.item(2, 0)["id"] == dataset.records[3].id and str(replaced) in dataset.unreadable
    assert "changed since the scan" in caplog.text
