import dataclasses
import json
import shutil

import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from t2i.autoencoder.model import encode, load_autoencoder
from t2i.autoencoder.train import train_autoencoder
from t2i.checkpoint import save_checkpoint
from t2i.cli import main
from t2i.data.datasets import ImageCaptionDataset


def _with(config, **training):
    return dataclasses.replace(
        config, autoencoder_training=dataclasses.replace(config.autoencoder_training, **training)
    )


def test_loss_decreases_and_outputs_are_written(trained_tiny):
    vae_dir, run = trained_tiny
    history = json.loads((run / "checkpoints" / "step-0000040" / "state.json").read_text())
    assert history["step"] == 40
    model = AutoencoderKL.from_pretrained(vae_dir)  # diffusers' own loader
    assert model.config.sample_size == 32 and model.config.latent_channels == 4
    for name in ("samples/losses.png", "samples/recon-0000040.png", "config.yaml", "vae/t2i_config.yaml"):
        assert (run / name).is_file(), name
    assert list((run / "logs").rglob("events.out.tfevents*"))


def test_loss_goes_down_over_a_few_dozen_steps(tiny_faces, tiny_config, tmp_path):
    config = _with(tiny_config, steps=60, disc_start=1000, log_every=5, checkpoint_every=60, sample_every=60)
    train_autoencoder(config, tiny_faces, tmp_path)
    from t2i.checkpoint import load_checkpoint

    history = load_checkpoint(tmp_path / "checkpoints" / "step-0000060")["history"]
    first, last = history[0]["rec"], sum(h["rec"] for h in history[-3:]) / 3
    assert last < 0.85 * first, (first, last)


def test_resume_gives_the_same_weights_as_a_straight_run(tiny_faces, tiny_config, tmp_path, monkeypatch):
    config = _with(tiny_config, steps=12, disc_start=6, checkpoint_every=6, sample_every=100, scale_samples=16)
    straight = train_autoencoder(config, tiny_faces, tmp_path / "straight")

    def save_then_stop(folder, step, state, keep):  # the run dies right after its step-6 checkpoint
        save_checkpoint(folder, step, state, keep)
        raise KeyboardInterrupt

    monkeypatch.setattr("t2i.training.loop.save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_autoencoder(config, tiny_faces, tmp_path / "resumed")
    monkeypatch.undo()
    resumed = train_autoencoder(config, tiny_faces, tmp_path / "resumed")  # same command, resumes at step 6
    a = load_file(straight / "diffusion_pytorch_model.safetensors")
    b = load_file(resumed / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_scaling_factor_gives_unit_variance_latents(trained_tiny, tiny_faces):
    vae_dir, _ = trained_tiny
    model = load_autoencoder(vae_dir)
    val = ImageCaptionDataset(tiny_faces, 32, split=None)
    x = torch.stack([val.item(i, 0)["pixel_values"] for i in range(len(val))])
    with torch.no_grad():
        z = encode(model, x) * model.config.scaling_factor
    assert 0.9 < z.std().item() < 1.1


def test_vq_autoencoder_trains_and_reports_codebook_usage(tiny_faces, tiny_config, tmp_path):
    from t2i.eval.autoencoder import evaluate_autoencoder

    config = _with(tiny_config, steps=8, disc_start=4, sample_every=8, checkpoint_every=8, scale_samples=16)
    config = dataclasses.replace(
        config, autoencoder=dataclasses.replace(config.autoencoder, kind="vq", latent_channels=3)
    )
    vae = train_autoencoder(config, tiny_faces, tmp_path)
    metrics = evaluate_autoencoder(vae, tiny_faces, split="train", out=tmp_path / "eval")
    assert 1 <= metrics["codebook_perplexity"] <= 64 and 0 < metrics["codebook_used_share"] <= 1
    assert (tmp_path / "eval" / "reconstructions.png").is_file()


def test_eval_command_reports_psnr_and_ssim(trained_tiny, tiny_faces, tmp_path, capsys):
    vae_dir, _ = trained_tiny
    assert (
        main(
            [
                "eval",
                "autoencoder",
                "--model",
                str(vae_dir),
                "--data",
                str(tiny_faces),
                "--split",
                "train",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 5 < metrics["psnr_db"] < 60 and 0 < metrics["ssim"] <= 1
    assert "psnr_db" in capsys.readouterr().out


def test_corrupt_latest_checkpoint_falls_back_to_the_one_before(tiny_faces, tiny_config, tmp_path, caplog, capsys):
    config = _with(tiny_config, steps=8, checkpoint_every=4, sample_every=100, scale_samples=8)
    train_autoencoder(config, tiny_faces, tmp_path)
    tensors = tmp_path / "checkpoints" / "step-0000008" / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:1000])
    capsys.readouterr()
    train_autoencoder(_with(config, steps=10), tiny_faces, tmp_path)
    assert "step-0000004 at step 4" in capsys.readouterr().out
    assert (tmp_path / "checkpoints" / "corrupt-step-0000008" / "tensors.safetensors").stat().st_size == 1000
    assert "step-0000008/tensors.safetensors" in caplog.text and "trying the checkpoint before it" in caplog.text
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "corrupt-step-0000008",
        "step-0000008",
        "step-0000010",
    ]
    for name in ("step-0000008", "step-0000010"):
        shutil.rmtree(tmp_path / "checkpoints" / name)
    (tmp_path / "checkpoints" / "corrupt-step-0000008").rename(tmp_path / "checkpoints" / "step-0000008")
    with pytest.raises(ValueError, match="no intact checkpoint"):  # only corrupt ones: never a silent restart
        train_autoencoder(_with(config, steps=12), tiny_faces, tmp_path)


def test_all_data_in_train_split_trains_without_validation(tiny_faces, tiny_config, tmp_path, capsys):
    config = _with(tiny_config, steps=2, checkpoint_every=2, sample_every=2, scale_samples=8)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, split_fractions=(1.0, 0.0, 0.0)))
    assert (train_autoencoder(config, tiny_faces, tmp_path) / "config.json").is_file()
    assert "no validation images" in capsys.readouterr().out
    assert (tmp_path / "samples" / "recon-0000002.png").is_file()
