"""Hub ids resolved offline from a Hugging Face cache laid out as the Hub client writes it."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _cache_with(hf_home, repo: str, folder) -> None:
    """`folder` as the snapshot of `repo` at COMMIT, its main branch pointing there (the hub-cache layout)."""
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, root / "snapshots" / COMMIT)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(COMMIT)


@pytest.fixture(scope="module")
def hf_home(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    _cache_with(home, "t2i-tests/tiny-t2i", tiny_model)
    _cache_with(home, "t2i-tests/tiny-vae", tiny_model / "vae")
    return home


def _t2i(hf_home, *args):
    env = dict(os.environ, HF_HOME=str(hf_home), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "t2i.cli", *args], capture_output=True, text=True, env=env)


def test_a_model_by_hub_id_and_revision_generates_as_its_folder_does(hf_home, tiny_model, tmp_path):
    made = {}
    for name, model in (
        ("id", "t2i-tests/tiny-t2i"),
        ("revision", f"t2i-tests/tiny-t2i@{COMMIT}"),
        ("folder", tiny_model),
    ):
        done = _t2i(hf_home, "generate", "a hat", "--model", str(model), "--seed", "5", "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        [made[name]] = (tmp_path / name).glob("*seed5.png")
    assert made["id"].read_bytes() == made["revision"].read_bytes()
    pixels = [np.asarray(Image.open(made[name])) for name in ("id", "folder")]  # (the PNG's text names the folder)
    assert np.array_equal(*pixels)


def test_an_autoencoder_by_hub_id(hf_home, monkeypatch):
    import huggingface_hub

    from t2i.autoencoder.model import load_autoencoder

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    vae = load_autoencoder("t2i-tests/tiny-vae")
    assert vae.config.scaling_factor > 0


def test_a_hub_id_missing_offline_is_one_line_naming_it_and_the_cache(hf_home, tmp_path):
    done = _t2i(hf_home, "generate", "a hat", "--model", "t2i-tests/not-there", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "t2i-tests/not-there is not in the Hugging Face cache" in done.stderr and str(hf_home) in done.stderr
    assert "HF_HUB_OFFLINE=1" in done.stderr
