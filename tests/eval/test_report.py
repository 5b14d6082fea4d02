import json

import pytest

from t2i.cli import main
from t2i.eval.report import GUIDANCE, SCHEDULERS, STEPS, pick_defaults


def _result(alignment, fd):
    return {"alignment": alignment, "frechet_distance": fd}


def test_pick_defaults_prefers_alignment_then_fd_then_fewer_steps():
    guidance = {1.0: _result(0.70, 5), 3.0: _result(0.855, 9), 5.0: _result(0.86, 12), 7.5: _result(0.80, 20)}
    steps = {5: _result(0.70, 9), 10: _result(0.845, 8), 20: _result(0.85, 8), 50: _result(0.852, 8)}
    assert pick_defaults(guidance, steps) == (3.0, 10)  # 3 and 5 are within a point: lower FD; 10 within a point


def test_report_measures_every_sampler_setting_and_writes_markdown_with_plots(
    tiny_model, tiny_classifier, tiny_faces, tmp_path
):
    out = tmp_path / "report"
    argv = ["eval", "report", "--model", str(tiny_model), "--classifier", str(tiny_classifier[0])]
    argv += ["--data", str(tiny_faces), "--out", str(out), "--n-prompts", "2", "--n-per-prompt", "1"]
    assert main([*argv, "--ddpm-prompts", "1"]) == 0
    report = json.loads((out / "report.json").read_text())
    keys = {tuple(s["key"]) for s in report["settings"]}
    assert keys == {(s, n, 3.0) for s in SCHEDULERS for n in STEPS} | {("dpm++", 20, g) for g in GUIDANCE}
    assert report["ddpm_1000"]["setting"]["steps"] == 1000
    assert report["default_guidance"] in GUIDANCE and report["default_steps"] in STEPS
    assert "classifier_accuracy_reconstructions" in report["autoencoder"]
    markdown = (out / "report.md").read_text()
    for png in ("per-attribute-alignment", "autoencoder-check", "samplers", "guidance", "worst-prompts"):
        assert f"({png}.png)" in markdown and (out / f"{png}.png").stat().st_size > 1000
    assert "Settings the pipeline should use" in markdown
    assert "through the model's autoencoder" in markdown
    through_ae = report["references"]["real_through_autoencoder"]
    assert through_ae["assertions"] == report["references"]["real_test"]["assertions"] > 0
    assert report["classifier_test_mean_accuracy"] == pytest.approx(tiny_classifier[1]["test_mean_accuracy"])
