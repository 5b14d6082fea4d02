"""Every benchmark script runs from a fresh clone: CI runs each in its seconds-long smoke mode."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args) -> dict:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke", *map(str, args)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    written = Path(out.stdout.strip().splitlines()[-1].removeprefix("wrote ").strip())
    if written.suffix == ".png":  # scaling prints the plot last
        written = written.with_suffix(".json")
    assert BENCHMARKS / "results" not in written.parents  # smoke runs never overwrite measured results
    return json.loads(written.read_text())


def test_train_throughput_smoke():
    result = _run("train_throughput.py")
    assert result["speedup_ours_over_peer"]["median"] > 0 and result["machine"]["torch"]
    bound = result["caching_bound_at_equal_flop_rate"]["tiny"]
    assert bound["bound"] > 1 and min(bound["gflops_per_image"].values()) > 0


@pytest.mark.parametrize("script", ["sampling_throughput.py", "hardware_limit.py", "memory.py"])
def test_model_benchmarks_smoke(script, request):
    # sampling_throughput runs diffusers' StableDiffusionPipeline too: a model it can run (no pooled embedding)
    model = request.getfixturevalue("tiny_model_states_only" if script == "sampling_throughput.py" else "tiny_model")
    result = _run(script, "--model", model)
    assert result["machine"]["cores"] >= 1


def test_steps_quality_smoke(tiny_model, tiny_classifier, tiny_faces):
    result = _run("steps_quality.py", "--model", tiny_model, "--classifier", tiny_classifier[0], "--data", tiny_faces)
    assert set(result["samplers"]) == {"dpm++"} and result["ddpm"]["steps"] == 4


def test_gpu_train_smoke():
    result = _run("gpu_train.py")  # on the CPU: every part of the GPU benchmark runs, at the tiny preset
    tiny = result["tiny"]
    assert tiny["latent_caching"]["images_per_s"] > 0 and tiny["text_caching"]["captions_per_s"] > 0
    assert tiny["unet"]["speedup_over_peer"]["ours"] > 0 and tiny["unet"]["flop_bound_of_caching"] > 1
    assert tiny["autoencoder"]["images_per_s"] > 0 and tiny["trainer"]["images_per_s"] > 0


def test_cpu_bf16_smoke():
    result = _run("cpu_bf16.py")
    assert result["auto_resolves_to"] == ("bf16" if result["cpu_runs_bf16_natively"] else "no")
    assert result["sampling"]["speedup_auto_over_fp32"]["median"] > 0


def test_scaling_smoke():
    result = _run("scaling.py")
    assert set(result["by_batch"]) == {"1", "2"}


def test_autoencoder_recipes_smoke(tmp_path):
    from t2i.data.synthetic import synthesize_dataset

    faces = synthesize_dataset(tmp_path / "faces", 40, 64, seed=0, workers=1)  # the demo preset's 64x64
    times = _run("autoencoder_recipes.py", "time", "--data", faces)
    assert times["demo"]["steps"] == 4800 and times["batch4"]["s_per_step"] > 0
    script, packed = BENCHMARKS / "autoencoder_recipes.py", tmp_path / "faces.safetensors"
    subprocess.run([sys.executable, str(script), "pack", "--data", faces, "--out", packed], check=True)
    out = subprocess.run(
        [sys.executable, str(script), "train", "--recipe", "ema", "--packed", packed, "--scale", "0.0005"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["steps"] == 2 and 5 < result["val_psnr_db"] < 60


def test_threads_under_load_smoke():
    result = _run("threads_under_load.py")
    assert result["beside_one_busy_process"]["speedup_1_thread_over_all"]["median"] > 0


def test_milestones_curve_scores_every_snapshot(tiny_faces, tiny_classifier, text_cache_dir, tmp_path):
    import dataclasses
    import importlib.util

    from t2i.config import load_config
    from t2i.pixel_diffusion.train import train_pixel_diffusion

    config = load_config("configs/cascade-base-tiny.yaml")
    config.diffusion_training = dataclasses.replace(config.diffusion_training, snapshot_every=4)
    train_pixel_diffusion(config, tiny_faces, tmp_path / "pixel16", text_cache_dir)
    spec = importlib.util.spec_from_file_location("milestones_curve", BENCHMARKS / "milestones_curve.py")
    curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curve)
    curves = curve.main(tmp_path / "out", [tmp_path / "pixel16"], tiny_faces, tiny_classifier[0], n_prompts=4)
    assert [p["images_seen"] for p in curves["pixel16"]] == [32, 64, 80]  # snapshots at 4 and 8 steps of 8, then 10
    assert all(0 <= p["alignment"] <= 1 and p["frechet_distance"] > 0 for p in curves["pixel16"])
    assert (tmp_path / "out" / "curves.png").is_file()


def test_distill_student_smoke(tiny_model, tiny_student, tiny_classifier, tiny_faces):
    result = _run(
        "distill_student.py", "--teacher", tiny_model, "--student", tiny_student, "--classifier", tiny_classifier[0],
        "--data", tiny_faces,
    )  # fmt: skip
    assert result["throughput"]["student 1"]["speedup_over_teacher"]["median"] > 0
    row = result["alignment"]["student 1 step(s), guidance 5"]
    assert 0 <= row["alignment"] <= 1 and row["of_teacher"]["alignment"] >= 0
