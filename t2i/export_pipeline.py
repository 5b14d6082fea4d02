"""The diffusers pipeline that `t2i export --format diffusers` writes as `pipeline.py` beside a model whose UNet
adds the caption's sentence embedding to its time embedding (unet.pooled_text): Stable Diffusion's pipeline, with
that embedding passed as the UNet's `class_labels`. It needs diffusers and torch only, not t2i:

    pipe = DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder)  # a local file, no Hub code
    image = pipe("She has blond hair.", generator=torch.Generator().manual_seed(0)).images[0]
"""

import torch
from diffusers import StableDiffusionPipeline


def sentence_embedding(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """s(y): the mean of the caption's token states over its real tokens, L2-normalized (as t2i.text computes)."""
    mask = mask.to(states.dtype).unsqueeze(-1)
    mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(mean, dim=-1)


class SentenceEmbeddingPipeline(StableDiffusionPipeline):
    """StableDiffusionPipeline for UNets with `class_embed_type="projection"` fed the caption's sentence embedding."""

    def encode_prompt(
        self,
        prompt,
        device,
        num_images_per_prompt,
        do_classifier_free_guidance,
        negative_prompt=None,
        prompt_embeds=None,
        negative_prompt_embeds=None,
        **kwargs,
    ):
        if prompt_embeds is not None or negative_prompt_embeds is not None:
            raise ValueError("this model also reads the caption's sentence embedding: pass prompt, not prompt_embeds")
        embeds, negative_embeds = super().encode_prompt(
            prompt, device, num_images_per_prompt, do_classifier_free_guidance, negative_prompt, **kwargs
        )
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        negatives = [negative_prompt or ""] * len(prompts) if not isinstance(negative_prompt, list) else negative_prompt
        sentences = [self._sentence(prompts, embeds, num_images_per_prompt)]
        if do_classifier_free_guidance:  # the UNet's batch is [negative; prompt]
            sentences.insert(0, self._sentence(negatives, negative_embeds, num_images_per_prompt))
        self._class_labels = torch.cat(sentences)
        return embeds, negative_embeds

    def _sentence(self, prompts: list[str], states: torch.Tensor, per_prompt: int) -> torch.Tensor:
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        mask = tokens.attention_mask.repeat_interleave(per_prompt, 0).to(states.device)
        return sentence_embedding(states, mask)

    def __call__(self, *args, **kwargs):
        forward = self.unet.forward

        def with_sentence(sample, timestep, encoder_hidden_states, *rest, **options):
            return forward(sample, timestep, encoder_hidden_states, *rest, class_labels=self._class_labels, **options)

        self.unet.forward = with_sentence
        try:
            return super().__call__(*args, **kwargs)
        finally:
            del self.unet.forward
