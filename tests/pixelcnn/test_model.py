import torch

from t2i.config import PixelCNNConfig
from t2i.pixelcnn.model import GatedPixelCNN


def _model(seed: int = 0) -> GatedPixelCNN:
    torch.manual_seed(seed)
    return GatedPixelCNN(PixelCNNConfig(width=16, layers=3, kernel_size=3), num_codes=8, side=6, text_dim=4)


def test_no_output_sees_its_own_code_or_a_later_one():
    model, sentence = _model().eval(), torch.randn(1, 4)
    grid = torch.randint(0, 8, (1, 6, 6), generator=torch.Generator().manual_seed(1))
    before = model(grid, sentence).flatten(2)
    for i in range(36):  # perturb position i: the logits at positions ≤ i are unchanged, later ones move
        changed = grid.clone()
        changed.view(-1)[i] = (changed.view(-1)[i] + 1) % 8
        after = model(changed, sentence).flatten(2)
        assert torch.equal(after[..., : i + 1], before[..., : i + 1])
        if i < 35:
            assert not torch.equal(after[..., i + 1 :], before[..., i + 1 :])
    # no blind spot: the code just above-right of a position reaches it (the horizontal stack alone would miss it)
    changed = grid.clone()
    changed[0, 2, 4] = (changed[0, 2, 4] + 1) % 8
    assert not torch.equal(model(changed, sentence)[..., 3, 2], model(grid, sentence)[..., 3, 2])


def test_the_first_rows_alone_give_the_same_logits():
    model, sentence = _model().eval(), torch.randn(2, 4)
    grid = torch.randint(0, 8, (2, 6, 6), generator=torch.Generator().manual_seed(2))
    full = model(grid, sentence)
    for rows in (1, 3, 6):
        assert torch.allclose(model(grid[:, :rows], sentence), full[:, :, :rows], atol=1e-6)


def test_row_by_row_logits_are_the_full_grid_s():
    model, sentence = _model().eval(), torch.randn(2, 4)
    grid = torch.randint(0, 8, (2, 6, 6), generator=torch.Generator().manual_seed(4))
    full = model(grid, sentence)
    with torch.no_grad():
        for row in range(6):
            above = model.rows_above(grid[:, :row], sentence)
            for columns in (1, 4, 6):
                logits = model.row_logits(grid[:, row : row + 1, :columns], above, sentence)
                assert torch.allclose(logits[:, :, 0], full[:, :, row, :columns], atol=1e-5)


def test_the_loss_falls_on_one_batch_and_the_caption_changes_the_logits(fit_one_batch):
    model = _model()
    tokens = torch.randint(0, 8, (4, 36), generator=torch.Generator().manual_seed(3))
    text, mask = torch.randn(4, 5, 4), torch.ones(4, 5)
    losses = fit_one_batch(model, lambda step: model.loss(tokens, text, mask))
    assert losses[-1] < 0.5 * losses[0]
    grid = tokens[:1].view(1, 6, 6)
    assert not torch.allclose(model(grid, torch.randn(1, 4)), model(grid, torch.randn(1, 4)))
