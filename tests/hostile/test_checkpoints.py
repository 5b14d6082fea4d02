"""Hostile runs against the checkpoint folder: steps past seven digits, a full disk, a re-run after every
checkpoint turned out corrupt."""

import pytest
import torch

from t2i.checkpoint import latest_checkpoint, list_checkpoints, resume_state, save_checkpoint


def test_rotation_keeps_the_newest_past_seven_digits(tmp_path):
    for step in (9_999_998, 9_999_999, 10_000_000, 10_000_001):
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.ones(2)}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-10000000", "step-10000001"]
    assert latest_checkpoint(tmp_path).name == "step-10000001"
    assert resume_state(tmp_path)[1]["step"] == 10_000_001


def test_a_full_disk_names_the_disk_and_leaves_no_temporary_folder(tmp_path, monkeypatch):
    from t2i import checkpoint

    save_checkpoint(tmp_path, 1, {"w": torch.ones(2)})

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(OSError, match=r"could not write checkpoint .*step-0000002 .*No space left.* MiB free"):
        save_checkpoint(tmp_path, 2, {"w": torch.ones(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["step-0000001"]  # the good one, and no .tmp-step-*


def test_a_rerun_after_all_checkpoints_were_corrupt_does_not_start_over(tmp_path):
    save_checkpoint(tmp_path, 5, {"w": torch.ones(2)})
    (tmp_path / "step-0000005" / "tensors.safetensors").write_bytes(b"garbage")
    for _ in range(2):  # the first call sets it aside; the re-run must say the same, not return None (step 0)
        with pytest.raises(ValueError, match="no intact checkpoint .* move them away"):
            resume_state(tmp_path)
    assert (tmp_path / "corrupt-step-0000005").is_dir()
