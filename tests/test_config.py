import pytest

from t2i.config import Config, load_config, save_config


@pytest.mark.parametrize("preset", ["tiny", "quick", "demo", "celebahq256"])
def test_presets_load_and_round_trip(preset, tmp_path):
    config = load_config(f"configs/{preset}.yaml")
    assert isinstance(config, Config)
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config


def test_downsample_factor_comes_from_the_channel_levels():
    assert load_config("configs/demo.yaml").autoencoder.downsample_factor == 4
    assert load_config("configs/celebahq256.yaml").autoencoder.downsample_factor == 8


def test_unknown_fields_and_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text("autoencoder:\n  chanels: [8]\n")
    with pytest.raises(ValueError, match=r"autoencoder: unknown field\(s\) \['chanels'\]"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
