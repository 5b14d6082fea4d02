from PIL import Image

from t2i.plots import plot_losses


def test_loss_curve_png(tmp_path):
    history = [{"step": s, "loss": 1.0 / s, "other": 0.0} for s in range(1, 20)]
    plot_losses(history, tmp_path / "losses.png", ["loss", "other", "absent"], "title")
    assert Image.open(tmp_path / "losses.png").size[0] > 300
