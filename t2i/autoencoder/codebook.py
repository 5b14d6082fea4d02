"""Dead-code restarts for a VQ autoencoder's codebook (Jukebox; SoundStream): the lever against collapse.

Only the code nearest to an encoder output receives a gradient, so a code that no output is near never moves:
with a small codebook dimension most codes die in the first hundred steps and a few carry every image. Every
`every` steps, each code that no encoder output chose since the last restart moves onto an encoder output drawn
at random from the current batch, where the data is; the last `every` steps have none, so that the decoder
learns the codes of the last restart.
"""

from __future__ import annotations

import torch
from accelerate.utils import broadcast, reduce


class DeadCodeRestarts:
    """Counts the codes a VQModel's quantizer chooses in training (a forward hook on `model.quantize`) and
    restarts the dead ones; a checkpoint part (its counts), so resume is exact."""

    def __init__(self, model, every: int, steps: int):
        self.codebook, self.every, self.last = model.quantize.embedding.weight, every, steps - every
        self.counts = torch.zeros(len(self.codebook), dtype=torch.long, device=self.codebook.device)
        self.latents = None  # the last training batch's encoder outputs z_e, (B, C, H, W)
        self.codes_in_batch = torch.zeros(())
        model.quantize.register_forward_hook(self._record)

    def _record(self, quantizer, inputs, outputs) -> None:
        if quantizer.training:
            uses = torch.bincount(outputs[2][2].flatten(), minlength=len(self.counts))
            self.latents, self.counts = inputs[0].detach(), self.counts + uses
            self.codes_in_batch = (uses > 0).sum().float()  # the loss plot's `codes`

    @torch.no_grad()
    def after_step(self, step: int, accelerator) -> int:
        """After optimizer step `step` (0-based): every `every` steps, e_k ← z_e[random] for each k with no use
        since the last restart (the global RNG picks: a checkpoint part; process 0's picks are sent to all).
        Returns how many codes moved."""
        if not self.every or (step + 1) % self.every or step + 1 > self.last:
            return 0
        counts = reduce(self.counts, "sum") if accelerator.num_processes > 1 else self.counts
        dead = (counts == 0).nonzero().squeeze(1)
        z = self.latents.permute(0, 2, 3, 1).reshape(-1, self.codebook.shape[1])
        picks = z[torch.randint(len(z), (len(dead),))]  # e_k ← z_e, one drawn at random for each dead k
        self.codebook[dead] = picks.to(self.codebook.dtype)
        if accelerator.num_processes > 1:
            broadcast(self.codebook.data, from_process=0)
        self.counts.zero_()
        return len(dead)

    def state_dict(self) -> torch.Tensor:
        return self.counts

    def load_state_dict(self, counts: torch.Tensor) -> None:
        self.counts.copy_(counts)
