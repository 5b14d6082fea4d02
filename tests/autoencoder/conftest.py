import pytest

from t2i.config import load_config


@pytest.fixture
def tiny_config():
    return load_config("configs/tiny.yaml")
