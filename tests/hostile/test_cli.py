"""Hostile command lines: bad arguments are one line naming the flag, checked before the model loads;
damaged model folders are one clear error; Ctrl-C during training checkpoints and says how to resume."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from t2i.checkpoint import load_checkpoint
from t2i.cli import main

NO_MODEL = "/nonexistent/model"  # arguments must be refused before any model is looked at


@pytest.mark.parametrize(
    "arguments, flag",
    [
        (["--guidance", "inf"], "--guidance"),
        (["--guidance", "1e30"], "--guidance"),
        (["--guidance", "nan"], "--guidance"),
        (["--steps", "100000"], "--steps"),
        (["--steps", "0"], "--steps"),
        (["--n", "1000"], "--n"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_out_of_range_generation_arguments_are_refused_by_name(arguments, flag, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main(["generate", "a face", "--model", NO_MODEL, *arguments])
    assert exit_code.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}:" in err and "Traceback" not in err


def test_bad_output_and_prompt_paths_are_one_line_errors(tmp_path, capsys):
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    cases = [
        (["a face", "--out", str(a_file)], "--out"),
        (["a face", "--out", str(a_file / "under")], "--out"),
        (["--prompts-file", str(tmp_path)], "prompts file"),
        (["a face", "--scheduler", "plms"], "--scheduler"),
    ]
    for arguments, named in cases:
        assert main(["generate", *arguments, "--model", NO_MODEL]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err and "Traceback" not in err, err


def test_damaged_model_folders_are_named(tiny_model, tmp_path, capsys):
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_model, truncated)
    weights = truncated / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    no_config = tmp_path / "no_config"
    shutil.copytree(tiny_model, no_config)
    (no_config / "vae" / "config.json").unlink()
    for folder, named in ((truncated, "unet/diffusion_pytorch_model.safetensors"), (no_config, "vae/config.json")):
        assert main(["generate", "a face", "--model", str(folder), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err and "Traceback" not in err, err


def test_ctrl_c_during_training_writes_a_checkpoint_where_it_stopped(tiny_faces, tmp_path):
    config = tmp_path / "long.yaml"
    config.write_text(
        open("configs/tiny.yaml")
        .read()
        .replace("steps: 40", "steps: 100000")
        .replace("checkpoint_every: 20", "checkpoint_every: 50000")
    )
    command = [sys.executable, "-m", "t2i.cli", "train", "autoencoder", "--config", str(config), "--data",
               str(tiny_faces), "--out", str(tmp_path / "run")]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, HF_HUB_OFFLINE="1"))  # fmt: skip
    samples = tmp_path / "run" / "samples"
    for _ in range(600):  # the loop has started once its first grid is written (step 20)
        if any(samples.glob("recon-*.png")):
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "re-run the same command to resume" in err
    stopped_at = int(err.split("stopped at step ")[1].split()[0])
    assert f"\nstopped at step {stopped_at}" in err  # on a line of its own, not after the progress bar
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / f"step-{stopped_at:07d}")["step"] == stopped_at


def test_non_finite_weights_are_named_at_load(tiny_model, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    nan_tensor, random_bytes = tmp_path / "nan", tmp_path / "random"
    for folder in (nan_tensor, random_bytes):
        shutil.copytree(tiny_model, folder)
    weights = nan_tensor / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, weights)
    weights = random_bytes / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4096:] = b"\xff" * 4096  # every float in the last 4 KB: NaN
    weights.write_bytes(bytes(data))
    for folder in (nan_tensor, random_bytes):
        assert main(["generate", "a face", "--model", str(folder), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert "unet/diffusion_pytorch_model.safetensors holds NaN or infinite weights" in err, err
    assert not list(tmp_path.glob("out/*.png"))  # no black images


@pytest.mark.parametrize(
    "family, command", [("gan", "t2i train gan"), ("pixel-diffusion", "t2i train pixel-diffusion")]
)
def test_train_autoencoder_refuses_families_without_one(tiny_faces, tmp_path, capsys, family, command):
    config = tmp_path / "c.yaml"
    config.write_text(f"family: {family}\ndata:\n  image_size: 32\n")
    assert (
        main(["train", "autoencoder", "--config", str(config), "--data", str(tiny_faces), "--out", str(tmp_path)]) == 2
    )
    assert f"this config is for the {family} family: train it with `{command}`" in capsys.readouterr().err


def test_damaged_folder_settings_are_named(tiny_model, tmp_path, capsys):
    import json

    from safetensors.torch import load_file, save_file

    cases = {}
    for name in ("missing_key", "sample_size", "text_key", "max_tokens", "negative_tokens"):
        cases[name] = tmp_path / name
        shutil.copytree(tiny_model, cases[name])
    weights = cases["missing_key"] / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    del tensors[sorted(tensors)[0]]
    save_file(tensors, weights)
    config = json.loads((cases["sample_size"] / "unet" / "config.json").read_text())
    (cases["sample_size"] / "unet" / "config.json").write_text(json.dumps(config | {"sample_size": 0}))
    changes = {"text_key": {"colour": 1}, "max_tokens": {"max_tokens": 100000}, "negative_tokens": {"max_tokens": -5}}
    for name, change in changes.items():
        text = cases[name] / "text_encoder" / "t2i_text.json"
        text.write_text(json.dumps(json.loads(text.read_text()) | change))
    expected = {
        "missing_key": "damaged UNet folder: its weights file does not fit its config.json",
        "sample_size": "sample_size must be a multiple of",
        "text_key": "t2i_text.json: unknown field(s) ['colour']",
        "max_tokens": "t2i_text.json: text.max_tokens must be between 2 and 512, got 100000",
        "negative_tokens": "t2i_text.json: text.max_tokens must be between 2 and 512, got -5",
    }
    for name, folder in cases.items():
        assert main(["generate", "a face", "--model", str(folder), "--out", str(tmp_path / "out")]) == 2, name
        err = capsys.readouterr().err
        assert expected[name] in err and "unexpected" not in err, err


def test_a_seed_whose_last_image_overflows_is_refused(tiny_model, tmp_path, capsys):
    flags = ["--model", str(tiny_model), "--seed", "4294967295", "--n", "2", "--out", str(tmp_path / "out")]
    assert main(["generate", "a face", *flags]) == 2
    assert "the last image would take seed 4294967296" in capsys.readouterr().err


def test_pickled_lpips_weights_are_refused(tmp_path):
    import pickle

    from t2i.autoencoder.losses import LPIPS

    path = tmp_path / "lpips.pth"
    path.write_bytes(pickle.dumps({"net.slice1.0.weight": [1.0]}))
    with pytest.raises(ValueError, match="not a safetensors file"):
        LPIPS(path)


def test_export_never_writes_into_its_model_and_names_a_misplaced_flag(tiny_model, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    before = sorted(p.relative_to(model) for p in model.rglob("*"))
    for out, where in ((model, "is the model folder"), (model / "unet", "is inside the model folder")):
        assert main(["export", str(out), "--model", str(model), "--format", "t2i-fp16"]) == 2
        assert where in capsys.readouterr().err
    assert sorted(p.relative_to(model) for p in model.rglob("*")) == before
    out = tmp_path / "fp16"
    assert main(["export", str(out), "--model", str(model), "--format", "t2i-fp16", "--scheduler", "ddim"]) == 2
    assert "--scheduler sets an exported diffusers pipeline's scheduler" in capsys.readouterr().err


def test_an_endless_prompts_file_is_refused(tiny_model, tmp_path, capsys):
    assert main(["generate", "--prompts-file", "/dev/zero", "--model", str(tiny_model), "--out", str(tmp_path)]) == 2
    assert "over 16777216 bytes" in capsys.readouterr().err


@pytest.mark.parametrize("size", [(20_000, 20_000), (16_777_216, 1), (4096, 4096 * 4)])
def test_edit_refuses_bombs_and_slivers_from_the_header(tiny_model, tmp_path, capsys, png_header, size):
    image = tmp_path / "bomb.png"
    image.write_bytes(png_header(*size))
    assert main(["edit", "a hat", "--image", str(image), "--model", str(tiny_model), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--image {image}:" in err and "unexpected" not in err, err
