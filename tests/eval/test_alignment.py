import json

import numpy as np
import pytest
import torch

from t2i.cli import main
from t2i.data.captions import attributes_in_caption
from t2i.eval.alignment import (
    combination_mask,
    default_suite,
    empty_prompt_floor,
    read_prompt_suite,
    score,
    training_captions,
)


def test_score_pools_hits_over_assertions_and_skips_what_the_classifier_cannot_see():
    predicted = torch.tensor([[1, -1], [1, 1]])
    claims = [{"Eyeglasses": 1, "Smiling": 1, "Attractive": 1}, {"Eyeglasses": -1, "Smiling": 1}]
    result = score(predicted, ["Eyeglasses", "Smiling"], claims)
    assert result["alignment"] == 0.5 and result["assertions"] == 4
    assert result["per_attribute"] == {"Eyeglasses": 0.5, "Smiling": 0.5}
    assert result["per_image"] == [0.5, 0.5]


def test_default_suite_half_held_out_and_every_prompt_names_its_combination(tiny_faces):
    cases = default_suite(tiny_faces, n_prompts=12, attributes_per_prompt=3, seed=0)
    assert [c.held_out for c in cases] == [False, True] * 6
    masks = np.array([combination_mask(attributes_in_caption(c)) for c in training_captions(tiny_faces)], np.uint64)
    for case in cases:
        assert attributes_in_caption(case.prompt) == case.attributes
        assert len(case.attributes) == 4 and "Male" in case.attributes
        mask = np.uint64(combination_mask(case.attributes))
        assert ((masks & mask) == mask).any() != case.held_out  # held out: no training caption names them all
    assert default_suite(tiny_faces, 12, 3, seed=0) == cases  # seeded


def test_prompt_file_reads_given_or_caption_attributes_and_rejects_bad_lines(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "A smiling man", "attributes": {"Smiling": 1, "Eyeglasses": -1}}\n\n'
                    '{"prompt": "She wears a hat."}\n')  # fmt: skip
    first, second = read_prompt_suite(path)
    assert first.attributes == {"Smiling": 1, "Eyeglasses": -1}
    assert second.attributes == {"Wearing_Hat": 1, "Male": -1}
    path.write_text('{"prompt": "x", "attributes": {"left_red": 1}}\n')  # any data's names
    assert read_prompt_suite(path)[0].attributes == {"left_red": 1}
    path.write_text('{"prompt": "x", "attributes": {"Glasses": 2}}\n')
    with pytest.raises(ValueError, match="prompts.jsonl:1: attributes must be names with values 1 or -1"):
        read_prompt_suite(path)
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="prompts.jsonl:1: not JSON"):
        read_prompt_suite(path)


def test_empty_prompt_floor_scores_every_image_against_every_prompt(tiny_classifier):
    from t2i.eval.alignment import PromptCase
    from t2i.eval.classifier import load_classifier

    classifier = load_classifier(tiny_classifier[0])
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    cases = [PromptCase("smiling", {"Smiling": 1}), PromptCase("not smiling", {"Smiling": -1})]
    floor = empty_prompt_floor(classifier, images, cases)
    assert floor["assertions"] == 6 and floor["alignment"] == pytest.approx(0.5)  # each image agrees with one


def test_eval_alignment_command_writes_table_json_and_worst_prompt_grid(tiny_model, tiny_classifier, tiny_faces,
                                                                         tmp_path, capsys):  # fmt: skip
    out = tmp_path / "alignment"
    argv = ["eval", "alignment", "--model", str(tiny_model), "--classifier", str(tiny_classifier[0])]
    argv += ["--data", str(tiny_faces), "--n-prompts", "4", "--n-per-prompt", "2", "--steps", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ALL" in printed and "held_out combinations" in printed and "weights-inception" in printed
    result = json.loads((out / "alignment.json").read_text())
    assert result["setting"]["images"] == 8 and len(result["per_prompt"]) == 4
    assert 0 <= result["alignment"] <= 1 and result["frechet_distance"] >= 0
    references = result["references"]
    assert set(references) == {"real_test", "real_through_autoencoder", "empty_prompt", "frechet_real_train_vs_test"}
    assert "real→AE" in printed
    assert (out / "worst-prompts.png").is_file()
    again = tmp_path / "again"
    assert main([*argv[:-1], str(again)]) == 0  # same seed, same numbers
    assert json.loads((again / "alignment.json").read_text())["per_prompt"] == result["per_prompt"]


def test_summary_splits_seen_and_held_out_by_image_rows():
    from t2i.eval.alignment import PromptCase, summarize

    cases = [PromptCase("a", {"Smiling": 1}, held_out=False), PromptCase("b", {"Smiling": 1}, held_out=True)]
    result = summarize(cases, 2, torch.tensor([[1], [1], [-1], [1]]), ["Smiling"])
    assert (result["alignment"], result["seen"], result["held_out"]) == (0.75, 1.0, 0.5)
    assert [p["alignment"] for p in result["per_prompt"]] == [1.0, 0.5]


def test_evaluation_splits_the_data_as_the_model_was_trained(tiny_model, tiny_classifier, tiny_faces, tmp_path):
    import shutil

    from t2i.config import load_config, save_config, saved_split_fractions
    from t2i.data.datasets import split_of
    from t2i.eval.alignment import Suite, load_real_images, measure_alignment

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    config = load_config(model / "t2i_config.yaml")
    config.data.split_fractions = (0.5, 0.25, 0.25)
    save_config(config, model / "t2i_config.yaml")
    assert saved_split_fractions(model) == (0.5, 0.25, 0.25)
    real = load_real_images(tiny_faces, 32, n_train=4, split_fractions=(0.5, 0.25, 0.25))
    test_ids = [
        p.stem
        for p in sorted((tiny_faces / "CelebA-HQ-img").iterdir())
        if split_of(p.stem, (0.5, 0.25, 0.25)) == "test"
    ]
    assert len(real.test_images) == len(test_ids) > 20  # not the 5% a default split would give
    suite = Suite(model, tiny_classifier[0], tiny_faces, tmp_path / "out", n_prompts=2, n_per_prompt=1)
    result = measure_alignment(suite, settings={"steps": 1}, n_empty=2)
    assert result["split_fractions"] == [0.5, 0.25, 0.25]
