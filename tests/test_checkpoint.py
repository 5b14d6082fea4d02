import pytest
import torch

from t2i.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint


def _state(step):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return {
        "step": step,
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "rng": torch.get_rng_state(),
        "history": [{"step": 1, "loss": 0.5}],
    }


def test_round_trip_keeps_every_value_and_type(tmp_path):
    state = _state(5)
    loaded = load_checkpoint(save_checkpoint(tmp_path, 5, state))
    assert loaded["step"] == 5 and loaded["history"] == [{"step": 1, "loss": 0.5}]
    assert all(torch.equal(loaded["model"][k], v) for k, v in state["model"].items())
    assert torch.equal(loaded["rng"], state["rng"])
    assert loaded["opt"]["param_groups"] == state["opt"]["param_groups"]
    assert set(loaded["opt"]["state"]) == {0, 1}  # integer keys survive
    assert torch.equal(loaded["opt"]["state"][0]["exp_avg"], state["opt"]["state"][0]["exp_avg"])


def test_keeps_the_last_k_and_leaves_no_temporary_folder(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, _state(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000030", "step-0000040"]
    assert latest_checkpoint(tmp_path).name == "step-0000040"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_an_interrupted_write_is_never_the_latest(tmp_path):
    save_checkpoint(tmp_path, 10, _state(10))
    (tmp_path / ".tmp-step-0000020").mkdir()  # what a kill during the write of step 20 leaves
    (tmp_path / ".tmp-step-0000020" / "tensors.safetensors").write_bytes(b"half")
    assert latest_checkpoint(tmp_path).name == "step-0000010"


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "json"])
def test_damaged_checkpoint_is_a_clear_error_naming_the_file(tmp_path, damage):
    path = save_checkpoint(tmp_path, 1, _state(1))
    tensors, state = path / "tensors.safetensors", path / "state.json"
    if damage == "truncate":
        tensors.write_bytes(tensors.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(tensors.read_bytes())
        data[-3] ^= 0xFF
        tensors.write_bytes(bytes(data))
    elif damage == "delete":
        tensors.unlink()
    else:
        state.write_text("{not json")
    with pytest.raises(ValueError, match="tensors.safetensors|state.json") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
