import numpy as np
import pytest
import scipy.linalg
import torch

from t2i.eval.fidelity import frechet_distance, inception_fid_kid


def test_frechet_distance_matches_the_matrix_square_root_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 6, generator=g) @ torch.randn(6, 6, generator=g)
    b = torch.randn(200, 6, generator=g) * 2 + 0.5
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_is_zero_for_the_same_sample_and_the_squared_shift_for_a_moved_one():
    a = torch.randn(100, 4, generator=torch.Generator().manual_seed(1))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(a, a + torch.tensor([3.0, 0, 0, 4.0])) == pytest.approx(25, rel=1e-6)
    assert np.isnan(frechet_distance(a[:1], a))  # one sample has no covariance


def test_standard_fid_without_the_weights_file_says_what_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights-inception-2015-12-05"):
        inception_fid_kid(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), tmp_path / "missing.pth")
