from PIL import Image

from t2i.plots import plot_losses


def test_loss_curve_png(tmp_path):
    history = [{"step": s, "loss": 1.0 / s, "other": 0.0} for s in range(1, 20)]
    plot_losses(history, tmp_path / "losses.png", ["loss", "other", "absent"], "title")
    assert Image.open(tmp_path / "losses.png").size[0] > 300


def test_a_long_title_is_wrapped_not_cut(tmp_path):
    title = "consistency distillation (pseudo-Huber between f_θ and the target's f_θ⁻), a title longer than one panel"
    plot_losses([{"step": 1, "loss": 1.0}], tmp_path / "losses.png", ["loss"], title)
    image = Image.open(tmp_path / "losses.png").convert("L")
    width, height = image.size
    top = [image.getpixel((x, y)) for y in range(height // 5) for x in (0, 1, width - 2, width - 1)]
    assert min(top) == 255  # no letter runs into the figure's left or right edge
