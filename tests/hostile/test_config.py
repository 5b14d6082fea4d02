"""Hostile configs: every field's type and range is checked at load, naming the field and the file."""

import pytest

from t2i.cli import main
from t2i.config import load_config


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("autoencoder_training:\n  steps: -5\n", r"autoencoder_training.steps must be >= 1, got -5"),
        ("diffusion_training:\n  steps: 0\n", r"diffusion_training.steps must be >= 1, got 0"),
        ("autoencoder_training:\n  checkpoint_every: 0\n", r"autoencoder_training.checkpoint_every must be >= 1"),
        ("diffusion_training:\n  batch_size: 0\n", r"diffusion_training.batch_size must be >= 1"),
        ("diffusion_training:\n  steps: abc\n", r"diffusion_training.steps: expected an integer, got 'abc'"),
        ("data:\n  flip: 'no'\n", r"data.flip: expected true or false, got 'no'"),
        ("diffusion_training:\n  steps: true\n", r"diffusion_training.steps: expected an integer, got True"),
        ("data:\n  split_fractions: [0.9, 0.1]\n", r"data.split_fractions: expected 3 values, got 2"),
        ("data:\n  split_fractions: [0.9, 0.1, 0.1]\n", r"data.split_fractions must be 3 fractions"),
        ("data:\n  image_size: 30\n", r"data.image_size must be a multiple of 16"),
        ("diffusion_training:\n  lr: .nan\n", r"diffusion_training.lr: expected a number, got nan"),
        ("diffusion_training:\n  cfg_dropout: 1.5\n", r"diffusion_training.cfg_dropout must be in \[0, 1\)"),
        ("caption_augment:\n  sentence_only: -0.1\n", r"caption_augment.sentence_only must be in \[0, 1\]"),
        ("autoencoder:\n  kind: vqgan\n", r"autoencoder.kind must be one of \['kl', 'vq', 'dvae'\]"),
        ("unet:\n  attention: [true]\n", r"unet.attention must have one entry per unet.channels entry"),
        ("data: [1, 2]\n", r"data: expected a mapping"),
        ("data:\n  image_size: [64\n", r"not a valid YAML file at line \d+, column \d+"),
        ("", r"the config file is empty"),
        (
            "family: vq-transformer\nautoencoder:\n  kind: kl\n",
            r"autoencoder.kind must be 'vq' or 'dvae' for the vq-transformer",
        ),
        ("autoencoder:\n  kind: dvae\n", r"autoencoder.kind must be 'kl' or 'vq' for latent diffusion"),
        ("family: vq-transformer\nautoencoder:\n  kind: vq\ntransformer:\n  heads: 3\n", r"transformer.heads must be"),
        (
            "family: vae-gan\n",
            r"family must be one of \['latent-diffusion', 'pixel-diffusion', 'cascade', 'gan', 'vq-transformer', "
            r"'pixelcnn'\]",
        ),
        ("family: gan\ndata:\n  image_size: 48\n", r"data.image_size must be a power of 2 >= 16 for the gan family"),
        ("family: gan\ntext:\n  kind: scratch\n", r"text.kind must be 'pretrained' for the gan family"),
        ("family: gan\ngan_training:\n  batch_size: 1\n", r"gan_training.batch_size must be >= 2"),
        ("diffusion:\n  beta_schedule: cosine\n", r"diffusion.beta_schedule must be 'scaled_linear' or 'linear'"),
        (
            "family: pixel-diffusion\ndata:\n  image_size: 30\n",
            r"data.image_size must be a multiple of 4 \(the UNet's 4x",
        ),
    ],
)
def test_bad_config_is_one_error_naming_the_field_and_file(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=message) as error:
        load_config(path)
    assert str(path) in str(error.value)


def test_bad_config_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("autoencoder_training:\n  steps: -5\n")
    assert (
        main(
            [
                "train",
                "autoencoder",
                "--config",
                str(tmp_path / "bad.yaml"),
                "--data",
                "x",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "autoencoder_training.steps" in err and "Traceback" not in err
    assert not (tmp_path / "y").exists()


def test_exponent_without_a_dot_is_a_number(tmp_path):
    (tmp_path / "lr.yaml").write_text("diffusion_training:\n  lr: 1e-4\n")  # YAML 1.1 reads this as a string
    assert load_config(tmp_path / "lr.yaml").diffusion_training.lr == 1e-4


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{x}: &{x} [{', '.join([f'*{p}'] * 9)}]\n" for p, x in zip("abcdefgh", "bcdefghi", strict=True)
)  # 389 bytes that expand to 9**9 strings


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        (BOMB, r"line 2, column \d+ \(aliases \(\*name\) are not taken in a config\)"),
        ("data: " + "[" * 5000 + "]" * 5000 + "\n", r"nested deeper than 20 levels"),
        ("data:\n  image_size: 64\n  image_size: 32\n", r"line 3, column 3 \(duplicate key 'image_size'\)"),
        ("data:\n  num_workers: 1000000\n", r"data.num_workers must be between 0 and 256"),
        ("data:\n  image_size: 1099511627776\n", r"data.image_size must be between 8 and 4096"),
        ("unet:\n  channels: [65536, 65536]\n  attention: [false, true]\n", r"unet.channels must list widths from 1"),
        ("autoencoder:\n  channels: [65536, 65536]\n  norm_num_groups: 1\n", r"autoencoder.channels must list 2 to 5"),
        ("unet:\n  attention_head_dim: 7\n", r"unet.attention_head_dim must be >= 1 and divide every entry"),
        ("diffusion_training:\n  seed: -1\n", r"diffusion_training.seed must be between 0 and 4294967295"),
        ("family: gan\ngan_training:\n  sample_seed: 4294967296\n", r"gan_training.sample_seed must be between 0 and"),
        (
            "data:\n  image_size: [" + "1, " * 100_000 + "1]\n",
            r"data.image_size: expected an integer, got \[1, 1, 1, 1, \.\.\.\]$",
        ),
    ],
)
def test_hostile_yaml_is_refused_quickly_and_briefly(tmp_path, yaml_text, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=message) as error:
        load_config(path)
    assert len(str(error.value)) < 500


def test_a_config_over_a_megabyte_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# " + "x" * 1_000_000 + "\n")
    with pytest.raises(ValueError, match="bytes: a config is at most 1000000"):
        load_config(path)
