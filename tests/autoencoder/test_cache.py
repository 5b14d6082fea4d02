import json

import pytest
import torch

from t2i.autoencoder.cache import LatentCache, cache_latents
from t2i.autoencoder.model import load_autoencoder
from t2i.data.datasets import load_pixels


def test_round_trip_matches_direct_encoding(trained_tiny, tiny_faces, tiny_cache, tmp_path):
    vae_dir, _ = trained_tiny
    cache = LatentCache(cache_latents(vae_dir, tiny_faces, tmp_path, mixed_precision="no"), vae_dir, 32)
    default = LatentCache(tiny_cache, vae_dir, 32)  # mixed_precision "auto": bf16 on a CPU that has it
    assert (default.tensors["mean"] - cache.tensors["mean"]).abs().max() < 0.05
    model = load_autoencoder(vae_dir)
    assert len(cache) == 120 and cache.manifest["kind"] == "kl" and cache.manifest["flip"]
    assert {r["split"] for r in cache.records} <= {"train", "val", "test"}
    record = cache.records[3]
    image = tiny_faces / "CelebA-HQ-img" / f"{record['id']}.png"
    with torch.no_grad():
        for flip in (False, True):
            posterior = model.encode(load_pixels(image, 32, flip)[None]).latent_dist
            key = "mean_flip" if flip else "mean"
            assert torch.allclose(cache.tensors[key][3], posterior.mean[0], atol=1e-5)
    z = cache.latents(torch.tensor([3, 3]), torch.tensor([False, True]), torch.Generator().manual_seed(0))
    assert z.shape == (2, 4, 8, 8)
    assert (z[0] - cache.tensors["mean"][3]).abs().max() < 6 * cache.tensors["logvar"][3].exp().sqrt().max()


def test_rerun_resumes_and_keeps_completed_shards(trained_tiny, tiny_faces, tmp_path):
    out = cache_latents(trained_tiny[0], tiny_faces, tmp_path, shard_size=50)
    shards = sorted(out.glob("shard-*.safetensors"))
    assert len(shards) == 3
    before = shards[0].stat().st_mtime_ns
    shards[2].unlink()  # as if the first run had been killed during the last shard
    cache_latents(trained_tiny[0], tiny_faces, tmp_path, shard_size=50)
    assert shards[0].stat().st_mtime_ns == before and shards[2].exists()
    assert len(LatentCache(out)) == 120


def test_mismatched_autoencoder_or_size_is_a_clear_error(trained_tiny, tiny_faces, tiny_cache, tmp_path):
    vae_dir, _ = trained_tiny
    with pytest.raises(ValueError, match="holds 32px images"):
        LatentCache(tiny_cache, image_size=64)
    other = tmp_path / "other_vae"
    model = load_autoencoder(vae_dir)
    with torch.no_grad():
        model.decoder.conv_out.bias.add_(1.0)
    model.save_pretrained(other)
    with pytest.raises(ValueError, match="another autoencoder"):
        LatentCache(tiny_cache, other)
    with pytest.raises(ValueError, match="autoencoder_sha256"):
        cache_latents(other, tiny_faces, tiny_cache)
    incomplete = tmp_path / "incomplete"
    cache_latents(vae_dir, tiny_faces, incomplete, shard_size=50)
    next(incomplete.glob("shard-00001*")).unlink()
    with pytest.raises(ValueError, match="incomplete"):
        LatentCache(incomplete)
    assert json.loads((tiny_cache / "cache.json").read_text())["image_size"] == 32


CACHE_SCRIPT = """
import sys
from t2i.autoencoder.cache import cache_latents
cache_latents(sys.argv[1], sys.argv[2], sys.argv[3], shard_size=25, mixed_precision="no")
"""


def test_two_processes_split_the_shards_and_give_the_one_process_cache(trained_tiny, tiny_faces, tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "cache.py"
    script.write_text(CACHE_SCRIPT)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = subprocess.run(
        [*launch, str(script), str(trained_tiny[0]), str(tiny_faces), str(tmp_path / "two")],
        env=dict(os.environ, HF_HUB_OFFLINE="1", ACCELERATE_USE_CPU="true", CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one = LatentCache(cache_latents(trained_tiny[0], tiny_faces, tmp_path / "one", shard_size=25, mixed_precision="no"))
    two = LatentCache(tmp_path / "two")
    assert len(list((tmp_path / "two").glob("shard-*.safetensors"))) == 5  # 120 images: shards 0-4, both ranks'
    assert two.records == one.records
    assert all(torch.allclose(two.tensors[k], one.tensors[k], atol=1e-5) for k in one.tensors)
