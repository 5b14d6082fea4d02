import pytest
import torch

from t2i.devices import autocast, cpu_runs_bf16_natively, fits_on_device, resolve_precision, to_device


def test_explicit_precisions_pass_through_and_a_bad_one_is_named():
    for precision in ("no", "bf16", "fp16"):
        assert resolve_precision(precision, "cpu") == precision
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        resolve_precision("fp8", "cpu")


def test_auto_on_a_cpu_follows_the_probe_and_the_probe_is_stable():
    answers = {cpu_runs_bf16_natively.__wrapped__() for _ in range(3)}  # uncached: three fresh probes
    assert len(answers) == 1
    assert resolve_precision("auto", "cpu") == ("bf16" if answers.pop() else "no")


def test_autocast_runs_matmuls_in_the_precision_asked():
    a = torch.randn(4, 4)
    with autocast("bf16", "cpu"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("no", "cpu"):
        assert (a @ a).dtype == torch.float32


def test_on_a_cpu_tensors_stay_put_and_nothing_is_moved_to_a_gpu():
    x = torch.arange(3)
    assert to_device(x, torch.device("cpu")) is x
    assert not fits_on_device(1, torch.device("cpu"))


def test_free_cores_leaves_the_cores_that_normal_priority_work_keeps_busy(monkeypatch):
    import os

    from t2i import devices

    cores = len(os.sched_getaffinity(0))
    for busy, free in ((0.0, cores), (0.4, cores), (cores - 0.6, 1), (cores + 3.0, 1)):
        monkeypatch.setattr(devices, "_busy_cores", lambda window_s, busy=busy: busy)
        assert devices.free_cores() == free
    monkeypatch.undo()
    assert 1 <= devices.free_cores(0.05) <= cores  # the real reading (Linux: /proc/stat)
