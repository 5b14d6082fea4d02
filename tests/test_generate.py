import json

import pytest
from PIL import Image

from t2i.cli import main
from t2i.generate import GenerationParameters, read_png_parameters, read_prompts_file


def test_generate_writes_pngs_that_record_their_parameters(tiny_model, tmp_path, capsys):
    argv = ["generate", "She wears eyeglasses.", "--negative", "a hat", "--model", str(tiny_model)]
    assert main([*argv, "--steps", "3", "--seed", "7", "--n", "2", "--out", str(tmp_path)]) == 0
    first, second = sorted(tmp_path.glob("*-seed*.png"))
    assert len(list(tmp_path.glob("*-grid.png"))) == 1 and "image(s) in" in capsys.readouterr().out
    parameters = read_png_parameters(second)
    settings = {"steps": 3, "guidance": 3.0, "scheduler": "dpm++"}
    assert parameters == GenerationParameters(
        "She wears eyeglasses.", "a hat", 8, 32, tiny_model.name, parameters.model_hash, "latent-diffusion", settings
    )
    text = Image.open(first).text["parameters"]
    assert text.startswith("She wears eyeglasses.\nNegative prompt: a hat\nSteps: 3, Sampler: dpm++, CFG scale: 3.0")
    assert f"Seed: 7, Size: 32x32, Model hash: {parameters.model_hash}" in text


def test_same_seed_same_png_bytes(tiny_model, tmp_path):
    for run in ("a", "b"):
        main(
            [
                "generate",
                "This man has a goatee.",
                "--model",
                str(tiny_model),
                "--steps",
                "2",
                "--out",
                str(tmp_path / run),
            ]
        )
    (a,), (b,) = (list((tmp_path / run).glob("*.png")) for run in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


def test_prompts_file_lines_and_jsonl(tiny_model, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text('She is smiling.\n\n{"prompt": "He is bald.", "negative_prompt": "a beard"}\n')
    assert read_prompts_file(prompts) == [
        {"prompt": "She is smiling.", "negative_prompt": ""},
        {"prompt": "He is bald.", "negative_prompt": "a beard"},
    ]
    main(
        [
            "generate",
            "--prompts-file",
            str(prompts),
            "--model",
            str(tiny_model),
            "--steps",
            "2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    saved = sorted(json.loads(Image.open(p).text["t2i"])["prompt"] for p in (tmp_path / "out").glob("*-seed*.png"))
    assert saved == ["He is bald.", "She is smiling."]
    assert Image.open(tmp_path / "out" / "grid.png").width == 128  # a row per prompt, a column per seed


def test_bad_inputs_are_clear_errors(tiny_model, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": 3}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: a JSON line needs a string 'prompt'"):
        read_prompts_file(bad)
    assert main(["generate", "--model", str(tiny_model)]) == 2
    assert main(["generate", "a hat", "--model", str(tmp_path / "nowhere")]) == 2
    with pytest.raises(SystemExit, match="2"):
        main(["generate", "a hat", "--model", str(tiny_model), "--steps", "0", "--out", str(tmp_path)])
    errors = capsys.readouterr().err
    assert "PROMPT or --prompts-file" in errors and "t2i model folder not found" in errors
    assert "argument --steps: must be from 1 to 1000, got 0" in errors
    with pytest.raises(ValueError, match="no t2i generation parameters"):
        Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
        read_png_parameters(tmp_path / "plain.png")


def test_model_sampling_json_sets_the_defaults_everywhere(tiny_model, tmp_path, capsys):
    import shutil

    from fastapi.testclient import TestClient

    from t2i.pipeline import SamplingSettings, Text2ImagePipeline
    from t2i.serve import create_app

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    SamplingSettings(steps=2, guidance=5.0, scheduler="ddim").save(model)
    assert main(["generate", "", "--model", str(model), "--n", "2", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "unconditional" in out and "(latent-diffusion: steps 2, guidance 5.0, scheduler ddim)" in out
    parameters = read_png_parameters(next((tmp_path / "out").glob("*-seed0.png")))
    assert parameters.settings == {"steps": 2, "guidance": 5.0, "scheduler": "ddim"}
    cells = json.loads(Image.open(next((tmp_path / "out").glob("*-grid.png"))).text["t2i-grid"])
    assert [c["seed"] for c in cells] == [0, 1] and cells[1]["settings"]["steps"] == 2  # the grid records its cells
    assert main(["generate", "a hat", "--model", str(model), "--steps", "3", "--out", str(tmp_path / "o2")]) == 0
    assert read_png_parameters(next((tmp_path / "o2").glob("*.png"))).settings["steps"] == 3  # a flag still wins
    client = TestClient(create_app(Text2ImagePipeline.from_pretrained(model)))
    assert client.get("/v1/model").json()["defaults"] == {"steps": 2, "guidance": 5.0, "scheduler": "ddim", "n": 1}
    assert client.post("/v1/generate", json={"prompt": "a hat"}).json()["parameters"]["scheduler"] == "ddim"
    (model / "sampling.json").write_text('{"steps": "many"}')
    with pytest.raises(ValueError, match="sampling.json"):
        Text2ImagePipeline.from_pretrained(model)


def test_help_shows_defaults_and_threads_are_settable(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "(default: 1)" in capsys.readouterr().out
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(["--threads", "1", "generate", "x", "--model", "/nonexistent"]) == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
