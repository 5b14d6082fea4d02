import json

import pytest

from t2i.data.captions import attributes_in_caption
from t2i.eval.alignment import default_suite
from t2i.eval.rephrasing import HELD_OUT_SHAPES, read_rephrasing_pairs, rephrase, rephrased_suites


def test_every_held_out_shape_asserts_the_same_attributes(tiny_faces):
    import numpy as np

    cases = default_suite(tiny_faces, 12, seed=0)
    suites = rephrased_suites(cases)  # raises when a rephrasing asserts something else
    assert [len(s) for s in suites.values()] == [12, 12, 12]
    assert all(a.prompt != b.prompt for a, b in zip(suites["template"], suites["synonyms"], strict=True))
    rng = np.random.default_rng(0)
    attributes = {"Male": 1, "Smiling": 1, "Young": 1, "Bangs": 1, "Wearing_Hat": 1, "Eyeglasses": 1}
    for shape in range(len(HELD_OUT_SHAPES)):
        assert attributes_in_caption(rephrase(attributes, rng, shape)) == attributes


def test_prompt_pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    pairs = [
        {"prompt": "She wears glasses.", "rephrasing": "A woman in spectacles."},
        {"prompt": "a red 2", "rephrasing": "the digit two, in red", "attributes": {"Smiling": 1}},
    ]
    path.write_text("\n".join(json.dumps(p) for p in pairs) + "\n\n")
    suites = read_rephrasing_pairs(path)
    assert [c.prompt for c in suites["rephrasing"]] == ["A woman in spectacles.", "the digit two, in red"]
    assert suites["prompt"][0].attributes == {"Eyeglasses": 1, "Male": -1}
    path.write_text(json.dumps({"prompt": "a hat"}))
    with pytest.raises(ValueError, match="rephrasing"):
        read_rephrasing_pairs(path)
    path.write_text(json.dumps({"prompt": "a thing", "rephrasing": "an item"}))
    with pytest.raises(ValueError, match="attributes"):
        read_rephrasing_pairs(path)


def test_rephrasing_measurement_writes_its_scores(tiny_model, tiny_classifier, tiny_faces, tmp_path):
    from t2i.eval.alignment import Suite
    from t2i.eval.rephrasing import measure_rephrasing

    result = measure_rephrasing(
        Suite(tiny_model, tiny_classifier[0], tiny_faces, tmp_path, n_prompts=4, n_per_prompt=1)
    )
    assert list(result["suites"]) == ["template", "held_out_shapes", "synonyms"]
    assert all(0 <= v <= 1 for v in result["suites"].values()) and result["gap"]["template"] == 0
    assert 0 < result["real_ceiling"] <= 1 and (tmp_path / "rephrasing.json").is_file()
    per_attribute = result["per_attribute"]  # the same attributes asked in each suite's words
    assert (
        list(per_attribute) == list(result["suites"])
        and per_attribute["template"].keys() == per_attribute["synonyms"].keys()
    )


def test_the_shapes_benchmark_runs_on_any_data_with_its_own_referee(tiny_model, tmp_path):
    """The generic path: a classifier of the shapes' own attributes (no mirroring), the benchmark's pairs with
    their held-out flags, the real ceiling from the images' attributes (the faces' phrase table reads none)."""
    from t2i.data.shapes import make_shapes
    from t2i.eval.alignment import Suite
    from t2i.eval.classifier import ClassifierConfig, train_classifier
    from t2i.eval.rephrasing import measure_rephrasing

    data = make_shapes(tmp_path / "shapes", n=160, held_out=4)
    config = ClassifierConfig(image_size=32, width=8, epochs=6, batch_size=16, lr=3e-3, flip=False)
    info = train_classifier(data, tmp_path / "classifier", config)
    assert len(info["attributes"]) == 14 and info["attributes"][0] == "left_red"
    suite = Suite(tiny_model, tmp_path / "classifier", data, tmp_path / "out", data / "prompts.jsonl", n_per_prompt=1)
    result = measure_rephrasing(suite)
    assert list(result["suites"]) == ["prompt", "rephrasing"] and set(result["held_out"]) == {"prompt", "rephrasing"}
    assert result["real_ceiling"] > 0.5  # the classifier on real images against their own attributes
    face_pairs = tmp_path / "faces.jsonl"
    face_pairs.write_text(json.dumps({"prompt": "She smiles.", "rephrasing": "A smiling woman."}) + "\n")
    suite.prompts_file = face_pairs
    with pytest.raises(ValueError, match="none of which the classifier reads"):
        measure_rephrasing(suite)
