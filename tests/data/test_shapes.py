import json

import numpy as np
from PIL import Image

from t2i.cli import main
from t2i.data.check import scan_dataset
from t2i.data.shapes import COLOURS, COMBINATIONS, HELD_OUT_TEMPLATE, TRAINING_TEMPLATES, held_out_combinations


def test_shapes_benchmark_holds_out_combinations_and_a_sentence_shape(tmp_path, capsys):
    assert main(["data", "shapes", "--out", str(tmp_path), "--n", "300", "--held-out", "12"]) == 0
    assert "prompts.jsonl" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    pairs = [json.loads(line) for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    unseen = held_out_combinations(12, 0)
    shown = {tuple(k.split("_")[1] for k, v in row["attributes"].items() if v == 1) for row in rows}
    assert len(shown) > 60 and not shown & set(unseen)  # no image shows a held-out combination
    for side in (slice(0, 2), slice(2, 4)):  # ... but every side's colour and shape is seen elsewhere
        assert {c[side] for c in unseen} <= {c[side] for c in COMBINATIONS if c in shown}
    assert len(pairs) == 24 and sum(p["held_out"] for p in pairs) == 12
    for pair in pairs:
        asserted = [k for k, v in pair["attributes"].items() if v == 1]
        assert len(asserted) == 4 and all(k.split("_")[1] in pair["rephrasing"] for k in asserted)
        assert pair["rephrasing"].startswith(HELD_OUT_TEMPLATE[:10]) and not any(
            pair["rephrasing"].startswith(t[:10]) for t in TRAINING_TEMPLATES
        )
    report = scan_dataset(tmp_path, 32)
    assert len(report.records) == 300 and len(report.attribute_names) == 14 and not report.problems


def test_each_side_shows_the_colour_its_attributes_say(tmp_path):
    main(["data", "shapes", "--out", str(tmp_path), "--n", "20", "--seed", "3"])
    for row in map(json.loads, (tmp_path / "metadata.jsonl").read_text().splitlines()):
        pixels = np.asarray(Image.open(tmp_path / row["file_name"]))
        for side, half in (("left", pixels[:, :16]), ("right", pixels[:, 16:])):
            colour = next(c for c in COLOURS if row["attributes"][f"{side}_{c}"] == 1)
            assert (np.abs(half.astype(int) - COLOURS[colour]).sum(-1) == 0).sum() >= 30
