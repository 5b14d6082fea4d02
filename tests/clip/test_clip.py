import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import VisionTextDualEncoderModel, VisionTextDualEncoderProcessor

from t2i.cli import main
from t2i.clip.model import build_clip
from t2i.clip.score import ClipReferee, evaluate_clip, r_precision
from t2i.clip.train import train_clip
from t2i.config import load_clip_config


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory, tiny_faces):
    """`t2i train clip --config configs/clip-tiny.yaml` (12 steps): its folder."""
    out = tmp_path_factory.mktemp("clip")
    assert (
        main(["train", "clip", "--config", "configs/clip-tiny.yaml", "--data", str(tiny_faces), "--out", str(out)]) == 0
    )
    return out / "clip"


def test_the_contrastive_loss_falls_on_one_batch_and_only_the_top_text_layers_train(fit_one_batch):
    torch.manual_seed(0)
    config = load_clip_config("configs/clip-tiny.yaml")
    model = build_clip(config)
    trained = {
        name.split(".")[2] for name, p in model.text_model.named_parameters() if p.requires_grad and ".layer." in name
    }
    assert trained == {str(len(model.text_model.encoder.layer) - 1)}  # text_trainable_layers: 1, the top one
    tokens = model.text_model.config.vocab_size
    batch = {
        "input_ids": torch.randint(1000, tokens, (8, 12)),
        "attention_mask": torch.ones(8, 12, dtype=torch.long),
        "pixel_values": torch.rand(8, 3, 32, 32) * 2 - 1,
    }
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.parameters = lambda: iter(trainable)  # fit_one_batch's optimizer: the trained parameters only
    losses = fit_one_batch(model, lambda step: model(**batch, return_loss=True).loss, steps=30, lr=1e-3)
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses  # ln 8 = 2.08 at chance


def test_the_folder_opens_in_transformers_and_scores_the_same_twice(tiny_clip, tiny_faces, tiny_classifier, tmp_path):
    model = VisionTextDualEncoderModel.from_pretrained(tiny_clip)
    processor = VisionTextDualEncoderProcessor.from_pretrained(tiny_clip)
    inputs = processor(text=["She wears eyeglasses.", "He has a goatee."], images=[torch.zeros(32, 32, 3).numpy()] * 2,
                       return_tensors="pt", padding=True)  # fmt: skip
    assert model(**inputs).logits_per_image.shape == (2, 2)
    assert (tiny_clip.parent / "samples" / "similarity-0000012.png").is_file()
    argv = ["eval", "clip", "--model", str(tiny_clip), "--data", str(tiny_faces), "--out", str(tmp_path)]
    assert main([*argv, "--classifier", str(tiny_classifier[0])]) == 0
    written = json.loads((tmp_path / "metrics.json").read_text())
    again = evaluate_clip(tiny_clip, tiny_faces, classifier_dir=tiny_classifier[0])
    assert written == again and 0 <= written["r_precision"] <= 1 and 0 <= written["zero_shot_accuracy"] <= 1
    assert written["clip_score"] >= 0 and "classifier_accuracy_originals" in written
    referee = ClipReferee(tiny_clip)
    assert referee.embed_texts(["a", "b"]).norm(dim=-1).allclose(torch.ones(2))


def test_r_precision_ranks_each_caption_against_other_images_captions():
    torch.manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(120, 16), dim=-1)
    assert r_precision(u, u) == 1.0  # every image nearest its own caption; never compared with itself
    v = u.roll(1, 0)  # every caption belongs to the next image: the own caption is a stranger
    assert r_precision(u, v) < 0.1
    assert r_precision(u[:5], u[:5]) == 1.0  # fewer than 99 others: all of them


def test_resume_is_exact(tiny_faces, straight_and_resumed):
    config = load_clip_config("configs/clip-tiny.yaml")
    config.clip_training = dataclasses.replace(config.clip_training, sample_every=100)
    straight, resumed = straight_and_resumed(lambda out: train_clip(config, tiny_faces, out))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_its_text_tower_conditions_a_family_as_its_text_encoder(tiny_clip, tiny_faces, tmp_path):
    from t2i.config import load_config
    from t2i.families import load_pipeline
    from t2i.pixel_diffusion.train import train_pixel_diffusion

    config = load_config("configs/pixel-tiny.yaml")
    config.text = dataclasses.replace(config.text, path=str(tiny_clip))
    config.caption_augment = dataclasses.replace(config.caption_augment, rewrites=0)  # fewer captions to encode
    training = dataclasses.replace(config.diffusion_training, steps=4, sample_every=100, captions_per_image=1)
    config.diffusion_training = training
    pipe = load_pipeline(train_pixel_diffusion(config, tiny_faces, tmp_path))
    tower = VisionTextDualEncoderModel.from_pretrained(tiny_clip).text_model
    assert all(
        torch.equal(a, b)
        for a, b in zip(pipe.text_encoder.model.state_dict().values(), tower.state_dict().values(), strict=True)
    )
    assert pipe("She wears eyeglasses.", num_inference_steps=2, output_type="pt").shape == (1, 3, 32, 32)


def test_eval_alignment_reports_the_clip_referee_with_its_ceiling_and_floor(
    tiny_clip, tiny_gan, tiny_faces, tiny_classifier, tmp_path, capsys
):
    argv = ["eval", "alignment", "--model", str(tiny_gan), "--classifier", str(tiny_classifier[0]), "--clip"]
    argv += [
        str(tiny_clip),
        "--data",
        str(tiny_faces),
        "--n-prompts",
        "4",
        "--n-per-prompt",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    result = json.loads((tmp_path / "alignment.json").read_text())
    for scores in (
        result["clip"],
        result["references"]["real_test"]["clip"],
        result["references"]["empty_prompt"]["clip"],
    ):
        assert 0 <= scores["r_precision"] <= 1 and 0 <= scores["clip_score"] <= 100
    assert "CLIP score" in capsys.readouterr().out


@pytest.mark.slow  # the report's every sampler setting: minutes; alignment's --clip covers the referee in `make test`
def test_the_report_carries_the_clip_referee(tiny_clip, tiny_model, tiny_faces, tiny_classifier, tmp_path):
    argv = ["eval", "report", "--model", str(tiny_model), "--classifier", str(tiny_classifier[0]), "--clip"]
    argv += [str(tiny_clip), "--data", str(tiny_faces), "--out", str(tmp_path), "--n-prompts", "2", "--n-per-prompt"]
    assert main([*argv, "1", "--ddpm-prompts", "1"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert all("clip" in setting for setting in report["settings"])
    assert "CLIP referee" in (tmp_path / "report.md").read_text()
