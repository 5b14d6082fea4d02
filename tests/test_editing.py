"""Image-to-image, inpainting, word swap and attention maps in Text2ImagePipeline (issue 20)."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from t2i.pipeline import Text2ImagePipeline

PROMPT = "This woman has blond hair and wears eyeglasses."


@pytest.fixture(scope="module")
def pipe(tiny_model):
    pipe = Text2ImagePipeline.from_pretrained(tiny_model)
    pipe.mixed_precision = "no"  # exact comparisons
    return pipe


@pytest.fixture(scope="module")
def tokens_pipe(tiny_model):
    """The tiny model with a UNet that also takes the sentence embedding as context tokens (unet.sentence_tokens):
    its own weights, the new projection at its initialization."""
    import dataclasses

    from t2i.config import load_config
    from t2i.diffusion.unet import build_unet

    pipe = Text2ImagePipeline.from_pretrained(tiny_model)
    config = load_config(Path(tiny_model) / "t2i_config.yaml")
    unet = build_unet(dataclasses.replace(config.unet, sentence_tokens=True), 4, pipe.unet.config.sample_size, 384)
    missing, unexpected = unet.load_state_dict(pipe.unet.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("encoder_hid_proj.") for k in missing)
    pipe.unet, pipe.mixed_precision = unet.eval(), "no"
    return pipe


@pytest.fixture(scope="module")
def source(pipe):
    return pipe(PROMPT, seed=3, num_inference_steps=4, output_type="pt").clamp(-1, 1)


@torch.no_grad()
def _through_autoencoder(pipe, x):
    return pipe.vae.decode(pipe.encode_image(x) / pipe.vae.config.scaling_factor).sample


def test_strength_zero_is_the_image_through_the_autoencoder_and_one_is_text_to_image(pipe, source):
    kept = pipe("A man.", image=source, strength=0.0, seed=3, num_inference_steps=4, output_type="pt")
    assert torch.allclose(kept, _through_autoencoder(pipe, source), atol=1e-5)
    ignored = pipe("A man.", image=source, strength=1.0, seed=5, num_inference_steps=4, output_type="pt")
    assert torch.equal(ignored, pipe("A man.", seed=5, num_inference_steps=4, output_type="pt"))
    halfway = pipe("A man.", image=source, strength=0.5, seed=5, num_inference_steps=4, output_type="pt")
    assert (halfway - source).abs().mean() < (ignored - source).abs().mean()  # SDEdit keeps some of the image


def test_a_pil_image_is_resized_and_taken(pipe, source):
    big = pipe(PROMPT, seed=3, num_inference_steps=4)[0].resize((96, 80))
    out = pipe("A man.", image=big, strength=0.0, seed=3, output_type="pt")
    assert out.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("scheduler", ["dpm++", "ddim", "euler"])
def test_inpainting_keeps_the_latent_outside_the_mask(pipe, source, scheduler):
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :16] = 1  # repaint the left half (latent columns 0-3 of 8)
    latents = pipe("She has black hair.", image=source, mask_image=mask, seed=7, num_inference_steps=4,
                   scheduler=scheduler, output_type="latent")  # fmt: skip
    z = pipe.encode_image(source)
    assert torch.equal(latents[..., 4:], z[..., 4:]) and not torch.allclose(latents[..., :4], z[..., :4])
    # (decoded, the seam spreads: the tiny decoder's receptive field spans most of its 8×8 latent)


@pytest.mark.parametrize("unet", ["token states", "sentence tokens too"])
def test_attention_maps_one_per_prompt_token(request, unet):
    pipe = request.getfixturevalue("pipe" if unet == "token states" else "tokens_pipe")
    images, maps = pipe([PROMPT, "A man."], seed=1, num_inference_steps=3, return_attention=True)
    assert len(images) == len(maps) == 2
    tokens = pipe.text_encoder.tokenizer.tokenize(PROMPT)
    assert maps[0].tokens == tokens and maps[0].maps.shape == (len(tokens), 32, 32)
    total = maps[0].maps.sum(0)  # the prompt's own tokens: part of the mass that all positions share
    assert (maps[0].maps >= 0).all() and 0 < total.min() and total.max() <= 1 + 1e-5
    assert maps[1].tokens == ["a", "man", "."]


@pytest.mark.parametrize("unet", ["token states", "sentence tokens too"])
def test_word_swap(request, unet):
    pipe = request.getfixturevalue("pipe" if unet == "token states" else "tokens_pipe")
    source = pipe(PROMPT, seed=3, num_inference_steps=4, output_type="pt").clamp(-1, 1)
    edited = "This woman has black hair and wears eyeglasses."
    plain = pipe(edited, seed=3, num_inference_steps=4, output_type="pt")
    without = pipe(edited, source_prompt=PROMPT, swap_steps=0.0, seed=3, num_inference_steps=4, output_type="pt")
    assert torch.allclose(without, plain, atol=1e-5)  # no injection: the edited prompt alone, same seed
    itself = pipe(PROMPT, source_prompt=PROMPT, swap_steps=1.0, self_swap_steps=1.0, seed=3, num_inference_steps=4,
                  output_type="pt")  # fmt: skip
    assert torch.allclose(itself.clamp(-1, 1), source, atol=1e-4)
    # injected all the way, the edited image attends where the source did: its maps are the source's
    _, swapped = pipe(
        edited, source_prompt=PROMPT, swap_steps=1.0, seed=3, num_inference_steps=4, return_attention=True
    )
    _, own = pipe(PROMPT, seed=3, num_inference_steps=4, return_attention=True)
    _, unswapped = pipe(edited, seed=3, num_inference_steps=4, return_attention=True)
    assert swapped[0].tokens[3] == "black" and own[0].tokens[3] == "blond"
    assert torch.allclose(swapped[0].maps, own[0].maps, atol=1e-5)
    assert not torch.allclose(unswapped[0].maps, own[0].maps, atol=1e-5)


def test_local_blend_keeps_the_source_outside_the_swapped_words_mask(pipe, monkeypatch):
    from t2i.attention import AttentionControl

    edited, run = "This woman has black hair and wears eyeglasses.", {"seed": 3, "num_inference_steps": 4}
    source = pipe(PROMPT, **run, output_type="latent")
    blended = pipe(edited, source_prompt=PROMPT, local_blend=True, **run, output_type="latent")
    plain = pipe(edited, source_prompt=PROMPT, **run, output_type="latent")
    kept = (blended - source).abs().amax(1) < 1e-4  # latent positions equal to the source's
    assert 0 < kept.float().mean() < 1 and not torch.allclose(blended, plain)
    monkeypatch.setattr(AttentionControl, "blend_mask", lambda self, words: torch.zeros(1, 1, 8, 8))
    nothing = pipe(edited, source_prompt=PROMPT, local_blend=True, **run, output_type="latent")
    assert torch.allclose(nothing, source, atol=1e-4)  # an empty mask: the source itself


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strength": 1.5, "image": torch.zeros(1, 3, 32, 32)}, "strength must be a number from 0 to 1"),
        ({"strength": 0.5}, "give image= as well"),
        ({"mask_image": torch.zeros(1, 1, 32, 32)}, "give image= as well"),
        ({"image": torch.zeros(1, 3, 16, 16)}, "3×32×32"),
        ({"image": torch.full((1, 3, 32, 32), 200.0)}, "0-255"),
        ({"image": "face.png"}, "must be a PIL image"),
        ({"image": torch.zeros(1, 3, 32, 32), "mask_image": torch.full((1, 1, 32, 32), 2.0)}, "mask_image values"),
        ({"source_prompt": ["a", "b"]}, "one per prompt"),
        ({"source_prompt": "a", "swap_steps": 2}, "swap_steps must be a number from 0 to 1"),
        ({"local_blend": True}, "give source_prompt= as well"),
    ],
)
def test_bad_edit_arguments_are_named(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(PROMPT, num_inference_steps=2, **kwargs)


def test_a_grey_pil_mask_is_taken(pipe, source):
    mask = Image.new("L", (32, 32), 0)
    out = pipe(PROMPT, image=source, mask_image=mask, seed=1, num_inference_steps=2, output_type="latent")
    assert torch.equal(out, pipe.encode_image(source))  # nothing to repaint


def test_the_edit_commands_write_pngs_that_record_the_edit(tiny_model, tmp_path, capsys):
    from t2i.cli import main
    from t2i.generate import read_png_parameters

    common = ["--model", str(tiny_model), "--steps", "2", "--out", str(tmp_path)]
    assert main(["generate", "She has blond hair.", *common]) == 0
    image = next(tmp_path.glob("*.png"))
    Image.new("L", (40, 40), 255).save(tmp_path / "mask.png")  # not the model's size: resized
    capsys.readouterr()

    swap = ["--source-prompt", "She has blond hair.", "--local-blend"]
    assert main(["edit", "She has black hair.", *swap, *common]) == 0
    edit, source, grid = map(Path, capsys.readouterr().out.split())
    assert read_png_parameters(edit).settings["source_prompt"] == "She has blond hair." and grid.is_file()
    assert read_png_parameters(edit).settings["local_blend"] is True
    assert read_png_parameters(source).prompt == "She has blond hair."
    assert "local_blend" not in read_png_parameters(source).settings
    assert main(["edit", "A man.", "--image", str(image), "--strength", "0.5", *common]) == 0
    assert read_png_parameters(Path(capsys.readouterr().out.split()[0])).settings["strength"] == 0.5
    assert main(["inpaint", "A man.", "--image", str(image), "--mask", str(tmp_path / "mask.png"), *common]) == 0
    assert read_png_parameters(Path(capsys.readouterr().out.split()[0])).settings["inpainted"] is True
    assert main(["attend", "She has blond hair.", *common]) == 0
    assert Path(capsys.readouterr().out.split()[-1]).name.endswith("-attention.png")

    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["inpaint", "x", "--image", str(tmp_path / "broken.png"), "--mask", str(image), *common]) == 2
    assert "--image" in capsys.readouterr().err
    assert main(["edit", "x", *common]) == 2  # neither an image nor a source prompt


def test_swapped_replaces_the_one_hair_colour_word():
    from t2i.eval.editing import swapped

    assert swapped("She has blonde hair and a hat.", {"Blond_Hair": 1}) == (
        "She has brown hair and a hat.",
        "Brown_Hair",
    )
    assert swapped("He has grey hair.", {"Gray_Hair": 1}) == ("He has black hair.", "Black_Hair")
    assert swapped("He wears a hat.", {"Wearing_Hat": 1}) is None
    assert swapped("Black hair? No: brown hair.", {"Brown_Hair": 1, "Black_Hair": 1}) is None


def test_outside_projects_away_exactly_what_the_logits_read():
    from t2i.eval.editing import outside

    weights = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    p = outside(weights)
    f = torch.randn(5, 32, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(f @ p @ weights.T, torch.zeros(5, 4), atol=1e-5)  # the 4 logits no longer see it
    assert torch.allclose(p @ p, p, atol=1e-5)  # a projection
    assert torch.allclose(p.trace(), torch.tensor(28.0), atol=1e-4)  # it keeps the other 28 dimensions


def test_word_swap_evaluation_scores_and_writes_its_files(tiny_model, tiny_classifier, tiny_faces, tmp_path):
    from t2i.eval.alignment import Suite
    from t2i.eval.editing import measure_word_swaps

    result = measure_word_swaps(
        Suite(tiny_model, tiny_classifier[0], tiny_faces, tmp_path, n_prompts=24, n_per_prompt=1)
    )
    assert result["prompts"] >= 1 and 0 <= result["changed"] <= 1 and 0 <= result["kept"] <= 1
    assert result["pixel_distance"]["two_seeds"] > 0 and result["feature_distance"]["edit"] > 0
    outside_hair, whole = result["feature_distance_outside_hair"], result["feature_distance"]
    assert all(0 < outside_hair[k] <= whole[k] + 1e-6 for k in whole)  # a projection never lengthens
    assert (tmp_path / "word_swap.json").is_file() and (tmp_path / "word_swap.png").is_file()
    ruler = result["rendered"]  # the renderer's perfect edits change the hair, not the face
    assert ruler["pixel_distance"]["edit"] < ruler["pixel_distance"]["two_faces"] and 0 <= ruler["kept"] <= 1


def test_the_renderers_swaps_draw_the_same_face_with_another_hair_colour():
    from t2i.eval.alignment import PromptCase
    from t2i.eval.editing import rendered_swaps

    case = PromptCase("This woman has blond hair and is smiling.", {"Blond_Hair": 1, "Smiling": 1, "Male": -1})
    same, _, _ = rendered_swaps([(case, case.prompt, "Blond_Hair")] * 2, 2, seed=4, size=32)
    source, edit, other = rendered_swaps([(case, "... black hair ...", "Black_Hair")] * 2, 2, seed=4, size=32)
    assert source.shape == (4, 3, 32, 32) and torch.equal(source, same)  # seeded
    assert torch.equal(rendered_swaps([(case, case.prompt, "Blond_Hair")], 2, 4, 32)[1], source[:2])  # no change
    changed = (edit - source).abs().amax(1) > 0  # pixels the new colour touches: the hair's, not the face's
    assert 0 < changed.float().mean() < 0.5 and (other - source).abs().mean() > (edit - source).abs().mean()
