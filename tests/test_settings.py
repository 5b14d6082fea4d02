import json

import pytest

from t2i.gan.pipeline import GANSettings
from t2i.pipeline import SamplingSettings


def test_settings_are_declared_once_and_checked():
    assert SamplingSettings().override(steps=None, guidance=2.0) == SamplingSettings(guidance=2.0)
    with pytest.raises(ValueError, match=r"no setting truncation \(its settings: steps, guidance, scheduler\)"):
        SamplingSettings().override(truncation=0.5)
    with pytest.raises(ValueError, match="scheduler must be one of dpm\\+\\+"):
        SamplingSettings(scheduler="plms").check()
    with pytest.raises(ValueError, match="steps must be a number from 1 to 1000"):
        SamplingSettings(steps=0).check()
    specs = {s["name"]: s for s in GANSettings.describe()}
    assert specs["truncation"] | {"help": ""} == {"name": "truncation", "type": "float", "default": 1.0, "help": "",
                                                    "low": 0, "high": 2, "choices": ()}  # fmt: skip


def test_a_model_folder_overrides_the_defaults(tmp_path):
    assert SamplingSettings.of_model(tmp_path) == SamplingSettings()
    GANSettings(truncation=0.5).save(tmp_path)
    assert GANSettings.of_model(tmp_path) == GANSettings(0.5)
    (tmp_path / "sampling.json").write_text(json.dumps({"truncation": 9}))
    with pytest.raises(ValueError, match="sampling.json: truncation must be a number from 0 to 2"):
        GANSettings.of_model(tmp_path)
    with pytest.raises(ValueError, match="unknown field"):
        SamplingSettings.of_model(tmp_path)
