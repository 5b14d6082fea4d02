import dataclasses

from t2i.config import load_config
from t2i.demo import run_demo
from t2i.generate import read_png_parameters
from t2i.pipeline import SamplingSettings


def test_demo_runs_every_stage_and_says_what_to_expect(tmp_path, capsys):
    config = load_config("configs/tiny.yaml")  # the quick preset's stages, at test size
    config.autoencoder_training = dataclasses.replace(config.autoencoder_training, steps=4, scale_samples=8)
    config.diffusion_training = dataclasses.replace(config.diffusion_training, steps=4, sample_every=100)
    results = run_demo(tmp_path, images=40, config=config)
    out = capsys.readouterr().out
    assert "demo done in" in out and "What to expect" in out
    assert SamplingSettings.of_model(results["diffusion model"]) == SamplingSettings(steps=10, guidance=5.0)
    grid = results["generated images (grid.png: a row per prompt)"]
    assert (
        grid.name == "grid.png" and read_png_parameters(next(grid.parent.glob("*-seed0.png"))).settings["steps"] == 10
    )
