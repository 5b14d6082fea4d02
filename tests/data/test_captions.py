import numpy as np
import pytest

from t2i.data.captions import CELEBA_ATTRIBUTES, PHRASES, attributes_in_caption, write_captions
from t2i.data.synthetic import sample_attributes


def test_forty_celeba_attributes_and_table_names_are_real():
    assert len(CELEBA_ATTRIBUTES) == 40
    assert set(PHRASES) <= set(CELEBA_ATTRIBUTES)


@pytest.mark.parametrize("seed", range(5))
def test_every_caption_phrase_maps_back_to_an_attribute_the_image_has(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        attrs = sample_attributes(rng)
        captions = write_captions(attrs, rng, 10)
        assert len(captions) == 10 and len(set(captions)) == 10
        for caption in captions:
            found = attributes_in_caption(caption)
            named = {a for a in found if a != "Male"}
            assert 2 <= len(named) <= 6, caption
            for attr, value in found.items():
                assert attrs[attr] == value, (caption, attr)


def test_reading_the_seed_caption():
    found = attributes_in_caption("The person has high cheekbones, and pointy nose. She is wearing lipstick.")
    assert found == {"Pointy_Nose": 1, "Wearing_Lipstick": 1, "Male": -1}
    assert attributes_in_caption("This man has bushy eyebrows and a goatee.") == {
        "Bushy_Eyebrows": 1,
        "Goatee": 1,
        "Male": 1,
    }
    # "eyeglasses" must not also read as a second "glasses"; "The person" asserts no gender
    assert attributes_in_caption("The person wears eyeglasses.") == {"Eyeglasses": 1}


def test_every_phrase_reads_back_to_its_own_attribute():
    for attr, (_, phrases) in PHRASES.items():
        for phrase in phrases:
            assert attributes_in_caption(f"The person has {phrase}.") == {attr: 1}, phrase


def test_negated_phrases_assert_absence_but_no_beard_is_its_own_attribute():
    assert attributes_in_caption("He is not smiling and has no beard.") == {"Smiling": -1, "No_Beard": 1, "Male": 1}
    assert attributes_in_caption("She wears lipstick, without glasses, and isn’t wearing a hat.") == {
        "Wearing_Lipstick": 1,
        "Eyeglasses": -1,
        "Wearing_Hat": -1,
        "Male": -1,
    }


def test_rare_phrases_are_read_back_and_never_written():
    from t2i.data.captions import RARE_PHRASES, in_rare_words

    assert set(RARE_PHRASES) <= set(PHRASES)
    rare = {p for phrases in RARE_PHRASES.values() for p in phrases}
    assert not rare & {p for _, phrases in PHRASES.values() for p in phrases}
    rng = np.random.default_rng(0)
    for _ in range(200):  # the dataset's captions never use a rare phrase
        caption = write_captions(sample_attributes(rng), rng, 1)[0]
        assert not any(f" {p}" in caption.lower() for p in rare), caption
        assert attributes_in_caption(in_rare_words(caption)) == attributes_in_caption(caption)
    assert in_rare_words("She wears glasses and has Blond hair.") == "She wears spectacles and has fair hair."
