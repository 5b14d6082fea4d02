import dataclasses
import shutil

import pytest
from fastapi.testclient import TestClient

import t2i
from t2i.cli import main
from t2i.config import load_config, save_config
from t2i.families import model_family
from t2i.gan.pipeline import GANPipeline
from t2i.pipeline import Text2ImagePipeline
from t2i.serve import ServeLimits, create_app


def test_each_folder_says_its_family_and_loads_with_one_call(
    tiny_model, tiny_pixel, tiny_gan, tiny_vq, tiny_pixelcnn, tiny_cascade, tmp_path
):
    folders = (tiny_model, tiny_pixel, tiny_gan, tiny_vq[0], tiny_pixelcnn, tiny_cascade)
    families = [model_family(m) for m in folders]
    assert families == ["latent-diffusion", "pixel-diffusion", "gan", "vq-transformer", "pixelcnn", "cascade"]
    old = tmp_path / "old"  # written before the seam: no saved config, latent diffusion
    shutil.copytree(tiny_model, old, ignore=shutil.ignore_patterns("t2i_config.yaml"))
    assert model_family(old) == "latent-diffusion"
    kinds = [type(t2i.load_pipeline(m)) for m in (old, tiny_pixel, tiny_gan)]
    assert kinds == [Text2ImagePipeline, Text2ImagePipeline, GANPipeline]
    config = load_config(tiny_gan / "t2i_config.yaml")
    config.family = "vae-gan"
    save_config(config, old / "t2i_config.yaml")
    with pytest.raises(ValueError, match="family must be one of"):
        t2i.load_pipeline(old)


def test_every_command_takes_every_family(
    tiny_pixel,
    tiny_gan,
    tiny_vq,
    tiny_pixelcnn,
    tiny_dalle,
    tiny_cascade,
    tiny_classifier,
    tiny_faces,
    tmp_path,
    capsys,
):
    families = [
        (tiny_pixel, False),
        (tiny_cascade, False),
        (tiny_gan, False),
        (tiny_vq[0], True),
        (tiny_pixelcnn, True),
        (tiny_dalle[0], True),
    ]
    for model, has_autoencoder in families:
        out = tmp_path / model.parent.name
        argv = ["eval", "alignment", "--model", str(model), "--classifier", str(tiny_classifier[0])]
        assert (
            main([*argv, "--data", str(tiny_faces), "--n-prompts", "2", "--n-per-prompt", "1", "--out", str(out)]) == 0
        )
        assert (out / "alignment.json").is_file() and ("real→AE" in capsys.readouterr().out) == has_autoencoder
    vq = TestClient(create_app(t2i.load_pipeline(tiny_vq[0]), ServeLimits(max_images=2)))
    names = [s["name"] for s in vq.get("/v1/model").json()["settings"]]
    assert names == ["guidance", "temperature", "top_k", "top_p"]
    made = vq.post("/v1/generate", json={"prompt": "a hat", "top_k": 4, "seed": 1}).json()
    assert made["parameters"]["top_k"] == 4 and made["images"][0]["seed"] == 1
    client = TestClient(create_app(GANPipeline.from_pretrained(tiny_gan), ServeLimits(max_images=2)))
    info = client.get("/v1/model").json()
    assert info["family"] == "gan" and info["defaults"] == {"truncation": 1.0, "n": 1}
    assert not info["takes_negative_prompt"] and [s["name"] for s in info["settings"]] == ["truncation"]
    made = client.post("/v1/generate", json={"prompt": "a hat", "truncation": 0.5, "n": 2}).json()
    assert made["parameters"]["truncation"] == 0.5 and len(made["images"]) == 2
    assert client.post("/v1/generate", json={"prompt": "a hat", "steps": 3}).status_code == 422
    assert client.post("/v1/generate", json={"prompt": "a hat", "truncation": 3}).status_code == 422
    assert main(["eval", "report", "--model", str(tiny_gan), "--data", str(tiny_faces), "--out", str(tmp_path)]) == 2
    assert main(["export", str(tmp_path / "x"), "--model", str(tiny_gan)]) == 2
    assert "gan model; only latent-diffusion" in capsys.readouterr().err


def test_pixel_folder_exports_to_a_half_size_copy(tiny_pixel, tmp_path):
    assert main(["export", str(tmp_path / "fp16"), "--model", str(tiny_pixel), "--format", "t2i-fp16"]) == 0
    pipe = t2i.load_pipeline(tmp_path / "fp16")
    assert pipe.family == "pixel-diffusion" and dataclasses.asdict(pipe.defaults)["steps"] == 20
