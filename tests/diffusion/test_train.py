import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from t2i.checkpoint import load_checkpoint
from t2i.config import load_config
from t2i.diffusion.train import min_snr_weight, train_diffusion


def _config(**training):
    config = load_config("configs/tiny.yaml")
    return dataclasses.replace(config, diffusion_training=dataclasses.replace(config.diffusion_training, **training))


def _weights(model_dir):
    return load_file(model_dir / "unet" / "diffusion_pytorch_model.safetensors")


def test_min_snr_weight():
    snr = torch.tensor([0.5, 5.0, 50.0])
    assert torch.allclose(min_snr_weight(snr, 5.0, "epsilon"), torch.tensor([1.0, 1.0, 0.1]))
    assert torch.allclose(min_snr_weight(snr, 5.0, "v_prediction"), torch.tensor([0.5 / 1.5, 5 / 6, 5 / 51]))
    assert torch.equal(min_snr_weight(snr, None, "epsilon"), torch.ones(3))


def test_training_writes_a_loadable_model_grids_and_curves(trained_tiny, tiny_cache, tmp_path):
    model_dir = train_diffusion(_config(steps=10, sample_every=10), tiny_cache, trained_tiny[0], tmp_path)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    assert unet.config.cross_attention_dim == 384
    for name in ("samples/samples-0000010.png", "samples/losses.png", "config.yaml"):
        assert (tmp_path / name).is_file()
    state = load_checkpoint(tmp_path / "checkpoints" / "step-0000010")
    assert state["global_batch"] == 8 and {"loss", "loss_t0", "images_per_s"} <= set(state["history"][-1])


def test_sigkill_and_resume_gives_the_same_weights(trained_tiny, tiny_faces, tiny_cache, tmp_path):
    args = [
        "--config",
        "configs/tiny.yaml",
        "--data",
        str(tiny_faces),
        "--autoencoder",
        str(trained_tiny[0]),
        "--cache",
        str(tiny_cache),
    ]
    command = [sys.executable, "-m", "t2i.cli", "train", "diffusion", *args]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run([*command, "--out", str(tmp_path / "straight")], check=True, env=env, capture_output=True)
    killed = subprocess.Popen(
        [*command, "--out", str(tmp_path / "killed")], env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "checkpoints" / "step-0000010").exists() and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "model").exists()  # it really died before the end
    subprocess.run([*command, "--out", str(tmp_path / "killed")], check=True, env=env, capture_output=True)
    a, b = _weights(tmp_path / "straight" / "model"), _weights(tmp_path / "killed" / "model")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(trained_tiny, tiny_cache, tmp_path):
    train_diffusion(_config(steps=10, sample_every=100), tiny_cache, trained_tiny[0], tmp_path / "run")
    good = tmp_path / "run" / "checkpoints" / "step-0000010" / "tensors.safetensors"
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    poisoned = tmp_path / "poisoned"  # the same cache with NaN latents, as a bad data shard would give
    shutil.copytree(tiny_cache, poisoned)
    for shard in poisoned.glob("shard-*.safetensors"):
        with safe_open(shard, "pt") as f:
            metadata = f.metadata()
        save_file({k: torch.full_like(v, float("nan")) for k, v in load_file(shard).items()}, shard, metadata)
    with pytest.raises(FloatingPointError, match="in steps 11-15"):
        train_diffusion(_config(steps=20, sample_every=100), poisoned, trained_tiny[0], tmp_path / "run")
    assert hashlib.sha256(good.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000010"]


def test_overfit_batch_drives_the_loss_down(trained_tiny, tiny_cache, tmp_path):
    config = _config(
        steps=100, lr=2e-3, warmup_steps=1, lr_schedule="constant", sample_every=100, log_every=20, min_snr_gamma=None
    )
    train_diffusion(config, tiny_cache, trained_tiny[0], tmp_path, overfit_batch=True)
    history = load_checkpoint(tmp_path / "checkpoints" / "step-0000100")["history"]
    # 100 steps reach about 0.6× the first 20 steps' loss, the ratio moving by a few points with the initialisation
    assert history[-1]["loss"] < 0.65 * history[0]["loss"], [h["loss"] for h in history]
    assert (tmp_path / "samples" / "samples-0000100.png").is_file()


RANK_SCRIPT = """
import dataclasses, hashlib, sys
from accelerate import Accelerator
from t2i.config import load_config
from t2i.diffusion.train import train_diffusion

def end_training(self):  # record each rank's trained weights when the loop ends
    digest = hashlib.sha256()
    for tensor in self.unwrap_model(self._models[0]).state_dict().values():
        digest.update(tensor.numpy().tobytes())
    open(f"{sys.argv[4]}/rank-{self.process_index}.sha256", "w").write(digest.hexdigest())

Accelerator.end_training = end_training
config = load_config("configs/tiny.yaml")
training = dataclasses.replace(config.diffusion_training, steps=6, sample_every=100, checkpoint_every=6)
train_diffusion(dataclasses.replace(config, diffusion_training=training), sys.argv[1], sys.argv[2], sys.argv[3])
"""


def test_two_process_cpu_training_keeps_ranks_identical(trained_tiny, tiny_cache, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RANK_SCRIPT)
    # accelerate 1.x runs `launch --cpu` as one process; two gloo processes on CPU take torchrun's path
    # (--multi_gpu) with ACCELERATE_USE_CPU set
    accelerate = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    args = [str(script), str(tiny_cache), str(trained_tiny[0]), str(tmp_path / "run"), str(tmp_path)]
    result = subprocess.run(
        [*accelerate, *args],
        env=dict(os.environ, HF_HUB_OFFLINE="1", ACCELERATE_USE_CPU="true", CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000006")
    assert state["world_size"] == 2 and state["global_batch"] == 2 * 8
    ranks = sorted(tmp_path.glob("rank-*.sha256"))
    assert len(ranks) == 2 and ranks[0].read_text() == ranks[1].read_text()


def test_token_dropout_hides_words_from_cross_attention_but_not_from_the_sentence_embedding():
    from t2i.diffusion.train import text_inputs

    states, mask = torch.randn(4, 8, 6), torch.ones(4, 8, dtype=torch.long)

    class Cache:
        def with_mask(self, captions):
            return states, mask

    cpu, seed = torch.device("cpu"), torch.Generator().manual_seed(2)
    full = text_inputs(["a"] * 4, None, Cache(), pooled=True, device=cpu, sentence_tokens=True)
    dropped = text_inputs(
        ["a"] * 4, None, Cache(), pooled=True, device=cpu, token_dropout=0.5, generator=seed, sentence_tokens=True
    )
    assert not torch.equal(dropped["encoder_hidden_states"], states)
    assert torch.equal(dropped["class_labels"], full["class_labels"]) and torch.equal(
        dropped["image_embeds"], full["class_labels"]
    )


def test_resuming_with_the_other_pooled_text_setting_says_so(trained_tiny, tiny_cache, tmp_path):
    old = _config(steps=10, sample_every=100)
    old.unet = dataclasses.replace(old.unet, pooled_text=False)  # a run started before the option existed
    train_diffusion(old, tiny_cache, trained_tiny[0], tmp_path)
    with pytest.raises(ValueError, match="trained with unet.pooled_text: false"):
        train_diffusion(_config(steps=20, sample_every=100), tiny_cache, trained_tiny[0], tmp_path)
