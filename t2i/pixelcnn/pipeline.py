"""PixelCNNPipeline: a token pipeline (t2i.family_pipeline.TokenPipeline: the prompt and the empty one for guidance,
Gumbel noise from seed + k, the decoder) whose codes come from the gated PixelCNN, in raster order. Code (i, j)
depends only on the rows up to i, so the network runs on those; its logits there are guided, tempered, cut and
sampled like the transformer's."""

from __future__ import annotations

import torch

from t2i.autoencoder.tokens import grid_side, num_codes
from t2i.family_pipeline import TokenPipeline, next_token
from t2i.pixelcnn.model import GatedPixelCNN
from t2i.text import sentence_embedding
from t2i.vq_transformer.settings import TokenSamplingSettings


class PixelCNNPipeline(TokenPipeline):
    family = "pixelcnn"
    weights = "pixelcnn.safetensors"

    @staticmethod
    def build(config, autoencoder, text_encoder) -> GatedPixelCNN:
        """The PixelCNN for an autoencoder: K outputs at each position of its h × w code grid."""
        return GatedPixelCNN(config.pixelcnn, num_codes(autoencoder), grid_side(autoencoder), text_encoder.hidden_size)

    @torch.no_grad()
    def sample_tokens(self, text, mask, gumbel, settings: TokenSamplingSettings, callback=None) -> torch.Tensor:
        """Tokens (B, N) for text states (B or 2B with guidance, L, D); gumbel: (B, N, K) noise, one row per image.
        Each row starts from the rows above it once (`rows_above`); each code then needs the row's codes before it."""
        model, batch = self.prior, gumbel.shape[0]
        sentence = sentence_embedding(text, mask)
        guided = len(text) == 2 * batch
        grid = torch.zeros(batch, model.side, model.side, dtype=torch.long, device=self.device)
        for row in range(model.side):
            above = model.rows_above(torch.cat([grid[:, :row]] * 2) if guided else grid[:, :row], sentence)
            for column in range(model.side):
                codes = grid[:, row : row + 1, : column + 1]
                logits = model.row_logits(torch.cat([codes, codes]) if guided else codes, above, sentence)
                i = row * model.side + column
                grid[:, row, column] = next_token(logits[:, :, 0, column], gumbel[:, i], settings)[:, 0]
                if callback is not None:
                    callback(i + 1, model.sequence_length)
        return grid.flatten(1)
