import json

import pytest
import torch

from t2i.data.captions import CELEBA_ATTRIBUTES
from t2i.data.synthetic import RENDERED_ATTRIBUTES
from t2i.eval.classifier import (
    AttributeClassifier,
    augment,
    load_classifier,
    per_attribute_accuracy,
    rendered_attributes,
)


def test_training_learns_the_rendered_attributes_and_saves_a_loadable_model(tiny_classifier, tiny_faces):
    folder, info = tiny_classifier
    assert info["attributes"] == sorted(RENDERED_ATTRIBUTES)  # the synthetic data writes -1 for the others
    assert info["epoch_losses"][-1] < 0.85 * info["epoch_losses"][0]
    assert set(info["test_accuracy"]) == set(info["attributes"]) and 0 < info["test_mean_accuracy"] <= 1
    assert json.loads((folder / "classifier.json").read_text())["test_accuracy"] == info["test_accuracy"]
    model = load_classifier(folder)
    images = torch.rand(4, 3, 64, 64) * 2 - 1  # another size is resized to the trained 32 px
    values, features = model.predict(images)
    assert values.shape == (4, len(info["attributes"])) and set(values.unique().tolist()) <= {1, -1}
    assert features.shape == (4, 8 * 8)
    assert torch.equal(values, load_classifier(folder).predict(images)[0])


def test_rendered_attributes_are_the_columns_with_both_values():
    labels = -torch.ones(3, 40, dtype=torch.int8)
    labels[0, CELEBA_ATTRIBUTES.index("Eyeglasses")] = 1
    labels[:, CELEBA_ATTRIBUTES.index("Male")] = 1  # constant: nothing to learn
    assert rendered_attributes(labels, CELEBA_ATTRIBUTES) == ["Eyeglasses"]


def test_per_attribute_accuracy_counts_known_labels_only():
    model = AttributeClassifier(["Eyeglasses", "Smiling"], width=4, image_size=8)
    torch.nn.init.zeros_(model.head.weight)
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([5.0, -5.0]))  # always: glasses yes, smiling no
    labels = torch.zeros(4, 40, dtype=torch.int8)
    labels[:, CELEBA_ATTRIBUTES.index("Eyeglasses")] = torch.tensor([1, 1, 1, -1], dtype=torch.int8)
    labels[:, CELEBA_ATTRIBUTES.index("Smiling")] = torch.tensor([-1, 1, 0, 0], dtype=torch.int8)
    accuracy = per_attribute_accuracy(model, torch.zeros(4, 3, 8, 8), labels, CELEBA_ATTRIBUTES)
    assert accuracy == {"Eyeglasses": 0.75, "Smiling": 0.5}


def test_missing_classifier_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="t2i eval train-classifier"):
        load_classifier(tmp_path)


def test_augmentation_mirrors_only_when_asked():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    mirrored = [augment(images, 0, torch.Generator().manual_seed(s)) for s in range(8)]
    assert any(torch.equal(m[0], images[0].flip(2)) for m in mirrored)
    assert all(torch.equal(augment(images, 0, torch.Generator().manual_seed(s), flip=False), images) for s in range(8))
