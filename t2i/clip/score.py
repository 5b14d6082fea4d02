"""A trained CLIP (t2i train clip) as a referee beside the attribute classifier:

CLIP score     100 · max(cos(u, v), 0), averaged (Hessel et al. 2021, without their 2.5 weight)
R-precision    how often an image's own caption ranks first among it and 99 captions of other images
               (AttnGAN's, as the text-to-face papers report it on MM-CelebA-HQ)
zero-shot      an attribute is read as present when "a face with X" is nearer the image than "a face without X"
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, VisionTextDualEncoderModel

from t2i.model_folder import check_model_folder
from t2i.text import tokenize


class ClipReferee:
    def __init__(self, folder: str | Path, device: str | torch.device = "cpu"):
        folder = check_model_folder(
            folder, ["config.json", "model.safetensors", "tokenizer_config.json"], "CLIP folder"
        )
        self.model = VisionTextDualEncoderModel.from_pretrained(folder, local_files_only=True).eval().to(device)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.image_size = self.model.config.vision_config.image_size
        self.device = torch.device(device)

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """u: unit image embeddings of (N, 3, H, W) pixels in [-1, 1] (resized to the CLIP's size)."""
        out = []
        for x in images.split(batch_size):
            x = x.to(self.device, torch.float32)
            if x.shape[-1] != self.image_size:
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="area")
            out.append(F.normalize(self.model.get_image_features(pixel_values=x).pooler_output, dim=-1))
        return torch.cat(out).cpu()

    @torch.no_grad()
    def embed_texts(self, captions: list[str], batch_size: int = 256) -> torch.Tensor:
        """v: unit caption embeddings."""
        out = []
        for start in range(0, len(captions), batch_size):
            batch = tokenize(self.tokenizer, captions[start : start + batch_size], self.tokenizer.model_max_length)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            out.append(F.normalize(self.model.get_text_features(**batch).pooler_output, dim=-1))
        return torch.cat(out).cpu()


def clip_score(image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> float:
    """100 · max(cos, 0) of each (image, its caption) pair, averaged."""
    return (100 * (image_embeds * text_embeds).sum(-1).clamp_min(0)).mean().item()


def r_precision(image_embeds, text_embeds, own: torch.Tensor | None = None, distractors: int = 99, seed=0) -> float:
    """The share of images i whose own caption text_embeds[own[i]] scores above `distractors` other captions of
    text_embeds drawn at random (all of them when there are fewer). own: None = image i's caption is row i."""
    n, m, rng = len(image_embeds), len(text_embeds), np.random.default_rng(seed)
    own = torch.arange(n) if own is None else own
    k = min(distractors, m - 1)
    picks = np.stack([rng.choice(m - 1, k, replace=False) for _ in range(n)])
    picks = torch.as_tensor(picks + (picks >= own.numpy()[:, None]))  # skip the image's own caption
    own_scores = (image_embeds * text_embeds[own]).sum(-1)
    others = torch.einsum("nd,nkd->nk", image_embeds, text_embeds[picks])
    return (own_scores > others.max(1).values).float().mean().item()


def referee_scores(referee: ClipReferee, images: torch.Tensor, captions: list[str], per_caption: int = 1) -> dict:
    """CLIP score and (given two captions or more) R-precision of images drawn `per_caption` at a time for each
    of `captions` (distinct)."""
    u, v = referee.embed_images(images), referee.embed_texts(captions)
    own = torch.arange(len(captions)).repeat_interleave(per_caption)
    scores = {"clip_score": clip_score(u, v[own])}
    return scores | ({"r_precision": r_precision(u, v, own)} if len(captions) > 1 else {})


def zero_shot_attributes(referee: ClipReferee, image_embeds, labels: torch.Tensor, attributes: list[str]) -> dict:
    """Per attribute: accuracy of "a face with X" against "a face without X" on images with a label (±1)."""
    accuracy = {}
    for column, attribute in enumerate(attributes):
        words = attribute.replace("_", " ").lower()
        with_x, without_x = referee.embed_texts([f"a face with {words}", f"a face without {words}"])
        present = image_embeds @ with_x > image_embeds @ without_x
        known = labels[:, column] != 0
        accuracy[attribute] = (present[known] == (labels[known, column] > 0)).float().mean().item()
    return accuracy


@torch.no_grad()
def evaluate_clip(
    clip_dir: str | Path,
    data_dir: str | Path,
    split: str = "test",
    n: int | None = None,
    out: str | Path | None = None,
    classifier_dir: str | Path | None = None,
) -> dict:
    """A CLIP as a referee on real images of a split (the first n), each with its first caption: R-precision,
    CLIP score (against the empty caption's, its floor), zero-shot attribute accuracy (beside the attribute
    classifier's on the same images, when given); metrics.json in `out`."""
    from t2i.config import load_clip_config
    from t2i.data.datasets import ImageCaptionDataset
    from t2i.eval.autoencoder import classifier_accuracies

    referee = ClipReferee(clip_dir)
    fractions = load_clip_config(Path(clip_dir) / "t2i_config.yaml").data.split_fractions  # scored on unseen images
    data = ImageCaptionDataset(data_dir, referee.image_size, split, random_caption=False, split_fractions=fractions)
    items = [data.item(i, 0) for i in range(min(n or len(data), len(data)))]
    x = torch.stack([item["pixel_values"] for item in items])
    labels = torch.stack([item["attributes"] for item in items])
    u, v = referee.embed_images(x), referee.embed_texts([item["caption"] for item in items])
    empty = referee.embed_texts([""]).expand_as(v)
    metrics = {
        "split": split,
        "images": len(items),
        "r_precision": r_precision(u, v),
        "clip_score": clip_score(u, v),
        "clip_score_empty_caption": clip_score(u, empty),
    }
    zero_shot = zero_shot_attributes(referee, u, labels, data.report.attribute_names)
    zero_shot = {name: accuracy for name, accuracy in zero_shot.items() if accuracy == accuracy}  # labelled ones
    metrics["zero_shot_accuracy"] = sum(zero_shot.values()) / len(zero_shot)
    metrics["zero_shot_accuracy_per_attribute"] = zero_shot
    if classifier_dir is not None:
        from t2i.eval.classifier import load_classifier

        classifier = load_classifier(classifier_dir)
        predicted = [classifier.predict(batch)[0] for batch in x.split(256)]
        metrics |= classifier_accuracies(classifier, {"originals": predicted}, labels, data.report.attribute_names)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
