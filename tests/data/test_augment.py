import re

import numpy as np
import pytest

from t2i.config import CaptionAugmentConfig
from t2i.data.augment import rewrite, with_rewrites
from t2i.data.captions import attributes_in_caption, write_captions
from t2i.data.synthetic import sample_attributes

CAPTION = "This woman has bangs and brown hair. She is smiling. She wears a hat."


def test_a_rewrite_is_a_pure_function_of_caption_k_and_seed():
    config = CaptionAugmentConfig(rewrites=3)
    assert rewrite(CAPTION, 0, config) == rewrite(CAPTION, 0, config)
    assert len({rewrite(CAPTION, k, config, seed) for k in range(3) for seed in range(3)}) > 3
    assert rewrite("", 0, config) == ""  # the unconditional input stays itself
    assert with_rewrites([CAPTION, ""], CaptionAugmentConfig(rewrites=0)) == [CAPTION, ""]
    assert with_rewrites([CAPTION], config)[0] == CAPTION and len(with_rewrites([CAPTION], config)) <= 4


def test_generic_rewrites_reorder_sentences_and_drop_only_filler():
    sentences = lambda text: sorted(s.strip().rstrip(".") for s in text.split(". "))  # noqa: E731
    shuffled = [rewrite(CAPTION, k, CaptionAugmentConfig(drop_filler=0.0), 0) for k in range(6)]
    assert all(sentences(text) == sentences(CAPTION) for text in shuffled) and len(set(shuffled)) > 1
    dropped = rewrite("A green 0 is on the left and not on the right.", 1, CaptionAugmentConfig(drop_filler=0.99))
    assert dropped.split() == ["green", "0", "on", "left", "not", "on", "right."]  # negations, prepositions kept


def test_phrase_shuffles_keep_each_modifier_with_its_noun():
    caption = "a red circle on the left and a blue square on the right"
    config = CaptionAugmentConfig(shuffle_phrases=True, drop_filler=0.0)
    rewrites = {rewrite(caption, k, config) for k in range(12)}
    assert "a blue square on the right" in {text.split(", ")[0].split("; ")[0].split(" and a")[0] for text in rewrites}
    for text in rewrites:
        phrases = sorted(re.split(r", |; | and ", text))
        assert phrases == ["a blue square on the right", "a red circle on the left"], text
    assert {rewrite("left: red, right: blue. Big.", k, config)[-4:] for k in range(6)} <= {"Big.", "lue."}
    assert rewrite(caption, 0, CaptionAugmentConfig(drop_filler=0.0)) == caption  # off by default


@pytest.mark.parametrize("seed", range(3))
def test_face_shapes_say_what_the_caption_says(seed):
    config = CaptionAugmentConfig(rewrites=2, drop_filler=0.0, face_shapes=True)
    rng, reshaped = np.random.default_rng(seed), 0
    for _ in range(100):
        caption = write_captions(sample_attributes(rng), rng, 1)[0]
        for k in range(2):
            text = rewrite(caption, k, config, seed)
            assert attributes_in_caption(text) == attributes_in_caption(caption), (caption, text)
            reshaped += text.split()[0].lower().strip(",") not in caption.lower().split()[0]
    assert reshaped > 50  # most rewrites start another way than their caption
