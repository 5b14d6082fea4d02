"""Text2ImagePipeline: prompt -> τθ -> denoise latents with classifier-free guidance -> decode.

Each step is spelled out the way diffusers' StableDiffusionPipeline does it (encode prompt, prepare
latents, denoising loop, decode), so that a model exported to diffusers gives the same images.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from safetensors.torch import load_file

from t2i.attention import AttentionControl, AttentionMaps, controlled, swapped_tokens, token_alignment
from t2i.autoencoder.model import load_autoencoder
from t2i.config import MAX_SEED, Config, TextConfig, from_dict, save_config, to_dict, validate
from t2i.devices import autocast, resolve_precision
from t2i.diffusion.settings import SCHEDULER_NAMES, EditSettings, SamplingSettings
from t2i.diffusion.unet import denoise, guidance_embedding, sentence_token_count, takes_guidance, takes_pooled_text
from t2i.families import model_family
from t2i.grid import pil_tensor, to_pil
from t2i.model_folder import check_model_folder, load_diffusers_model
from t2i.settings import SWAP_STEPS, guide, uses_guidance
from t2i.text import load_text_encoder, unet_condition

SCHEDULERS = dict(  # the sampler of each SCHEDULER_NAMES entry
    zip(
        SCHEDULER_NAMES,
        (
            DPMSolverMultistepScheduler,
            DDIMScheduler,
            DDPMScheduler,
            EulerDiscreteScheduler,
            EulerAncestralDiscreteScheduler,
            UniPCMultistepScheduler,
            LCMScheduler,
        ),
        strict=True,
    )
)
DIFFUSERS_NAMES = {"steps": "num_inference_steps", "guidance": "guidance_scale"}  # __call__'s keywords for them


MODEL_FILES = [
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/t2i_text.json",
]  # what `t2i train diffusion` and `pixel-diffusion` write (plus text_encoder/model.safetensors when trained)
AUTOENCODER_FILES = ["vae/config.json", "vae/diffusion_pytorch_model.safetensors"]  # latent diffusion only


@dataclass
class Request:
    """One call's inputs, checked (Text2ImagePipeline.check_inputs)."""

    prompts: list[str]
    negatives: list[str]
    sources: list[str] | None  # a word swap's source prompts, one per prompt
    per_prompt: int
    settings: SamplingSettings
    edits: EditSettings
    pixels: torch.Tensor | None  # image=: (batch, 3, size, size) in [-1, 1]
    mask: torch.Tensor | None  # mask_image=: (batch, 1, size, size) in [0, 1], 1 = repaint
    local_blend: bool
    return_attention: bool

    @property
    def batch(self) -> int:
        return len(self.prompts) * self.per_prompt

    @property
    def copies(self) -> int:
        return 1 if self.sources is None else 2  # a word swap draws [source images; edited images] together


def make_scheduler(name: str, train_scheduler_config) -> object:
    """A sampler configured from the training noise schedule (same β_t, T and prediction type). A schedule with
    clip_sample (pixel space) has every sampler that can clip its x0 prediction to [-1, 1] (diffusers' thresholding
    with a maximum of 1 is exactly that; Euler has no such option)."""
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {sorted(SCHEDULERS)}, got {name!r}")
    cls, extra = SCHEDULERS[name], {}
    takes = inspect.signature(cls).parameters
    config = {k: v for k, v in train_scheduler_config.items() if k in takes}  # another sampler's keys left out
    if train_scheduler_config.get("clip_sample") and "thresholding" in takes:
        extra = {"thresholding": True, "sample_max_value": 1.0}
    if name == "ddpm":  # "trailing" walks t = T−1 … 0; SD's "leading" + steps_offset 1 would ask for t = T at T steps
        extra["timestep_spacing"] = "trailing"
    return cls.from_config(config, **extra)


def model_hash(weights: str | Path) -> str:
    """The first 10 hex digits of the SHA-256 of a model's weights file (web UIs' short model hash)."""
    return hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:10]


def save_model_config(model_dir: Path, config) -> None:
    """What every family's model folder holds beside its weights: the config it was trained with
    (t2i_config.yaml, its family included) and the text encoder's reference (text_encoder/t2i_text.json)."""
    (model_dir / "text_encoder").mkdir(parents=True, exist_ok=True)
    (model_dir / "text_encoder" / "t2i_text.json").write_text(json.dumps(to_dict(config.text), indent=2))
    save_config(config, model_dir / "t2i_config.yaml")


def load_text_encoder_of(model_dir: Path):
    """The text encoder a model folder names (text_encoder/t2i_text.json), with its weights if it was trained."""
    path = model_dir / "text_encoder" / "t2i_text.json"
    text_config = from_dict(TextConfig, json.loads(path.read_text()), str(path))
    try:
        validate(Config(text=text_config))  # max_tokens and the other ranges, as a config's
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    text_encoder = load_text_encoder(text_config)
    if text_config.kind == "scratch":  # trained jointly with the model: its weights live in the model folder
        check_model_folder(model_dir, ["text_encoder/model.safetensors"], "t2i model folder")
        text_encoder.load_state_dict(load_file(model_dir / "text_encoder" / "model.safetensors"))
    return text_encoder.eval()


def check_request(
    prompt, negative_prompt, seed, num_images_per_prompt, output_type, output_types=("pil", "pt", "latent")
) -> tuple[list[str], list[str]]:
    """The prompts and negative prompts as lists, after checking what every family's pipeline takes; a ValueError
    naming the bad one."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt) if isinstance(prompt, list | tuple) else []
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("prompt must be a string or a non-empty list of strings")
    negatives = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt or ""] * len(prompts)
    if len(negatives) != len(prompts) or not all(isinstance(p, str) for p in negatives):
        raise ValueError("negative_prompt must be a string or a list of strings, one per prompt")
    if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
        raise ValueError(f"num_images_per_prompt must be an integer >= 1, got {num_images_per_prompt!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    last = seed + len(prompts) * num_images_per_prompt - 1  # image k takes seed + k
    if last > MAX_SEED:
        raise ValueError(f"seed {seed}: the last image would take seed {last}, over {MAX_SEED}; give a smaller seed")
    if output_type not in output_types:
        raise ValueError(f"output_type must be one of {', '.join(output_types)}, got {output_type!r}")
    return prompts, negatives


class Text2ImagePipeline:
    """Latent diffusion (with `vae`) or pixel-space diffusion (`vae` None: the UNet denoises the image itself).

    Editing. `image` (a PIL image, a list of them, or a (B, 3, H, W) tensor in [-1, 1]; one, or one per
    prompt) with `strength` s: SDEdit, the denoising starts from the image's latent noised to the last
    s·steps of the sampler's steps (0 gives the image back through the autoencoder, 1 ignores it).
    `mask_image` (white or 1 = repaint; PIL or (B, 1, H, W) in [0, 1]) inpaints: after every step the latent
    outside the mask is the image's own, noised to the next step. `source_prompt`: a word swap
    (prompt-to-prompt): each prompt is drawn from its source prompt's noise, with the source's cross-attention
    for the first `swap_steps` (a fraction) of the steps and its self-attention (the layout) for the first
    `self_swap_steps`; with `local_blend`, the edit keeps the source's latent wherever the swapped words do not
    attend (prompt-to-prompt's LocalBlend, t2i.attention). `return_attention`: returns (images, maps), maps
    one AttentionMaps per image: a map per prompt token (cross-attention averaged over heads, layers and
    steps, at the image's size; at every pixel the maps of all `max_tokens` positions, and of the sentence
    embedding's tokens where the UNet has them, sum to 1).
    """

    takes_negative_prompt = True  # the unconditional half of classifier-free guidance
    takes_edits = True  # image=, mask_image=, source_prompt=, return_attention= (t2i.editing)
    takes_mixed_precision = True  # its `mixed_precision`: the networks under autocast

    def __init__(
        self,
        unet,
        vae,
        text_encoder,
        scheduler_config,
        name: str = "untitled",
        hash: str = "",
        defaults=None,
        mixed_precision: str = "auto",
    ):
        self.unet, self.vae, self.text_encoder = unet.eval(), vae.eval() if vae is not None else None, text_encoder
        self.scheduler_config = scheduler_config
        self.name, self.hash = name, hash
        self.defaults: SamplingSettings = defaults or SamplingSettings()  # what a call without settings uses
        self.mixed_precision = mixed_precision  # "auto" (bf16 where the device runs it natively), "no", "bf16", "fp16"
        self.guidance_is_input = takes_guidance(unet)  # a distilled student: one pass per step, g embedded (LCM)
        self.takes_negative_prompt = not self.guidance_is_input

    @property
    def family(self) -> str:
        return "pixel-diffusion" if self.vae is None else "latent-diffusion"

    @property
    def autoencoder(self):
        return self.vae

    @property
    def image_size(self) -> int:
        factor = 1 if self.vae is None else 2 ** (len(self.vae.config.block_out_channels) - 1)
        return self.unet.config.sample_size * factor

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> Text2ImagePipeline:
        """Load a model folder written by `t2i train diffusion` (unet/, vae/, scheduler/, text_encoder/) or
        `t2i train pixel-diffusion` (the same without vae/)."""
        latent = model_family(model_dir) == "latent-diffusion"  # model_dir: a Hub id too
        files = MODEL_FILES + (AUTOENCODER_FILES if latent else [])
        model_dir = check_model_folder(model_dir, files, "t2i model folder")
        unet = load_diffusers_model(UNet2DConditionModel, model_dir / "unet", "UNet folder")
        factor = 2 ** (len(unet.config.block_out_channels) - 1)
        if unet.config.sample_size < factor or unet.config.sample_size % factor:
            size = unet.config.sample_size
            raise ValueError(
                f"{model_dir / 'unet' / 'config.json'}: sample_size must be a multiple of {factor}, got {size}"
            )
        vae = load_autoencoder(model_dir / "vae") if latent else None
        scheduler_config = DDPMScheduler.load_config(model_dir / "scheduler")
        defaults = SamplingSettings.of_model(model_dir)
        weights = model_dir / "unet" / "diffusion_pytorch_model.safetensors"
        text_encoder = load_text_encoder_of(model_dir)
        pipe = cls(unet, vae, text_encoder, scheduler_config, model_dir.resolve().name, model_hash(weights), defaults)
        return pipe.to(device)

    def to(self, device: str | torch.device) -> Text2ImagePipeline:
        for module in (self.unet, self.vae, self.text_encoder):
            if module is not None:
                module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def encode_prompt(self, prompts: list[str], per_prompt: int = 1) -> dict[str, torch.Tensor]:
        """The UNet's text inputs (t2i.text.unet_condition) of each prompt, repeated `per_prompt` times."""
        states, mask = self.text_encoder.encode(prompts)
        states, mask = states.to(self.device, self.unet.dtype), mask.to(self.device)
        condition = unet_condition(states, mask, takes_pooled_text(self.unet), sentence_token_count(self.unet) > 0)
        return {name: value.repeat_interleave(per_prompt, 0) for name, value in condition.items()}

    def image_tensor(self, image, prompts: int, per_prompt: int, mask: bool = False) -> torch.Tensor:
        """An `image=` (or `mask_image=`) argument as (prompts · per_prompt, C, size, size) on the device: RGB in
        [-1, 1] (a mask: one channel in [0, 1], 1 = repaint). PIL images are resized to the model's size, short
        side first, then centre-cropped; one image serves every prompt."""
        name, size = "mask_image" if mask else "image", self.image_size
        images = image if isinstance(image, list | tuple) else [image]
        if isinstance(image, torch.Tensor):
            x = image.float()
        elif all(isinstance(i, Image.Image) for i in images):
            x = torch.stack([pil_tensor(i, size, "L" if mask else "RGB") for i in images])
            x = x if mask else x * 2 - 1
        else:
            raise ValueError(f"{name} must be a PIL image, a list of them or a tensor, got {type(image).__name__}")
        channels, low = (1, 0.0) if mask else (3, -1.0)
        if x.ndim != 4 or x.shape[1:] != (channels, size, size) or len(x) not in (1, prompts):
            raise ValueError(
                f"{name} must be 1 or {prompts} image(s) of {channels}×{size}×{size} (the model's size), "
                f"got shape {tuple(x.shape)}"
            )
        bound = (0.0, 1.0) if mask else (-2.0, 2.0)  # a decoder's raw output overshoots [-1, 1]; 0-255 is a mistake
        if not (x.isfinite().all() and x.min() >= bound[0] and x.max() <= bound[1]):
            raise ValueError(f"{name} values must lie in [{low:g}, 1] (0-255 pixel values are not taken)")
        return x.clamp(low, 1).expand(prompts, -1, -1, -1).repeat_interleave(per_prompt, 0).to(self.device)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """z = s · E(x) (the posterior's mean); in pixel space, the image itself."""
        if self.vae is None:
            return pixels.to(self.unet.dtype)
        return self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.mean * self.vae.config.scaling_factor

    def prompt_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        """The prompt's token ids padded to max_tokens (what the UNet attends over), and the positions of its
        own tokens (no special tokens, no padding)."""
        tokenizer = self.text_encoder.tokenizer
        out = tokenizer(
            prompt,
            padding="max_length",
            max_length=self.text_encoder.max_tokens,
            truncation=True,
            return_special_tokens_mask=True,
        )
        ids, special, real = out["input_ids"], out["special_tokens_mask"], out["attention_mask"]
        return ids, [k for k in range(len(ids)) if real[k] and not special[k]]

    def word_swap(self, sources: list[str], prompts: list[str], per_prompt: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pair of prompts tokenized once: (images, T, T), for each edited image which source tokens each of
        its tokens takes attention from; and (2 · images, T), 1 on the tokens each source image, then each edited
        image, has that the other lacks (the local blend's words)."""
        lead = sentence_token_count(self.unet)  # the sentence embedding's context tokens: each keeps its own A
        alignments, words = [], torch.zeros(2, len(prompts), lead + self.text_encoder.max_tokens)
        for k, (a, b) in enumerate(zip(sources, prompts, strict=True)):
            (a_ids, a_own), (b_ids, b_own) = self.prompt_ids(a), self.prompt_ids(b)
            alignments.append(torch.block_diag(torch.eye(lead), token_alignment(a_ids, b_ids)))
            in_source, in_edit = swapped_tokens(a_ids, b_ids)  # the words only: padding shifts with the length
            words[0, k, [lead + i for i in in_source if i in a_own]] = 1.0
            words[1, k, [lead + i for i in in_edit if i in b_own]] = 1.0
        words = words.repeat_interleave(per_prompt, 1).flatten(0, 1).to(self.device)
        return torch.stack(alignments).repeat_interleave(per_prompt, 0), words

    def attention_maps(self, prompt: str, maps: torch.Tensor) -> AttentionMaps:
        """The maps (T, H, W) of a prompt's own tokens."""
        ids, own = self.prompt_ids(prompt)
        lead = sentence_token_count(self.unet)
        tokens = self.text_encoder.tokenizer.convert_ids_to_tokens([ids[k] for k in own])
        return AttentionMaps(tokens, maps[[lead + k for k in own]])

    def check_inputs(
        self,
        prompt,
        negative_prompt,
        *,
        seed,
        per_prompt,
        output_type,
        settings,
        edits,
        image,
        mask_image,
        source_prompt,
        local_blend,
        return_attention,
    ) -> Request:
        """Every argument checked once (the ranges by the settings classes); a ValueError naming the first bad one."""
        max_steps = self.scheduler_config["num_train_timesteps"]
        if settings.scheduler == "lcm":
            max_steps = self.scheduler_config.get("original_inference_steps", 50)  # the grid LCM's steps come from
        if settings.steps > max_steps:
            limit = "LCM grid's" if settings.scheduler == "lcm" else "model's"
            raise ValueError(f"steps must be at most the {limit} {max_steps} timesteps, got {settings.steps}")
        prompts, negatives = check_request(prompt, negative_prompt, seed, per_prompt, output_type)
        if not self.takes_negative_prompt and any(negatives):
            raise ValueError("this model is a distilled student: it takes guidance as an input, not a negative prompt")
        if (edits.strength != 1 or mask_image is not None) and image is None:
            raise ValueError("strength and mask_image edit an image: give image= as well")
        sources = None
        if source_prompt is not None:
            sources, _ = check_request(source_prompt, None, seed, per_prompt, output_type)
            if len(sources) != len(prompts):
                raise ValueError("source_prompt must be a string or a list of strings, one per prompt")
        if local_blend and sources is None:
            raise ValueError("local_blend blends a word swap: give source_prompt= as well")
        pixels = None if image is None else self.image_tensor(image, len(prompts), per_prompt)
        mask = None if mask_image is None else self.image_tensor(mask_image, len(prompts), per_prompt, mask=True)
        texts = {"prompts": prompts, "negatives": negatives, "sources": sources, "per_prompt": per_prompt}
        images = {"pixels": pixels, "mask": mask, "local_blend": local_blend, "return_attention": return_attention}
        return Request(**texts, settings=settings, edits=edits, **images)

    def encode_request(self, request: Request) -> tuple[dict, bool]:
        """1. The UNet's text inputs: [negative; prompt] under guidance, else the prompt's (a word swap's sources
        first); and whether guidance doubles the batch (not for a distilled student: g is its input)."""
        texts = request.prompts if request.sources is None else request.sources + request.prompts
        cond = self.encode_prompt(texts, request.per_prompt)
        if self.guidance_is_input:  # w = g − 1, embedded (LCM)
            g = torch.full((len(cond["encoder_hidden_states"]),), request.settings.guidance, device=self.device)
            cond["timestep_cond"] = guidance_embedding(g, self.unet.config.time_cond_proj_dim).to(self.unet.dtype)
            return cond, False
        if not uses_guidance(request.settings.guidance):
            return cond, False
        uncond = self.encode_prompt(request.negatives * request.copies, request.per_prompt)
        return {name: torch.cat([uncond[name], cond[name]]) for name in cond}, True

    def prepare_latents(self, sampler, request: Request, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """2. The sampler's timesteps, then the noise ε and z_T = σ_max ε (the initial sigma depends on them)."""
        sampler.set_timesteps(request.settings.steps, device=self.device)
        size = self.unet.config.sample_size
        shape = (request.copies * request.batch, self.unet.config.out_channels, size, size)
        noise = randn_tensor(shape, generator=generator, dtype=torch.float32).to(self.device, self.unet.dtype)
        return noise, noise * sampler.init_noise_sigma

    def start_from_image(self, sampler, request: Request, noise, latents):
        """2b. Image-to-image (SDEdit): the image's latent z_img noised to the first of the last strength·steps
        steps, which are the only ones run. Returns (z_img, timesteps, latents)."""
        z_image = self.encode_image(request.pixels).repeat(request.copies, 1, 1, 1)
        steps = request.settings.steps
        skip = steps - int(steps * request.edits.strength)  # the steps SDEdit leaves out
        timesteps = sampler.timesteps[skip * sampler.order :]
        if hasattr(sampler, "set_begin_index"):
            sampler.set_begin_index(skip * sampler.order)
        if skip:
            latents = sampler.add_noise(z_image, noise, timesteps[:1]) if len(timesteps) else z_image
        return z_image, timesteps, latents

    def edit_step(self, request: Request, sampler, timesteps, noise, z_image, control, words):
        """2e. What follows each sampler step, as a function (step, z) -> z: inpainting puts back the image's
        latent, noised to the next step, outside the mask; a local blend keeps the source's latent where the
        swapped words do not attend; the attention control counts the step."""
        keep = None  # 1 where the image's latent is kept (the mask's complement, at the latent's size)
        if request.mask is not None:
            keep = 1 - F.interpolate(request.mask, size=self.unet.config.sample_size, mode="area")
            keep = keep.repeat(request.copies, 1, 1, 1)

        def after(step: int, latents: torch.Tensor) -> torch.Tensor:
            if keep is not None:  # z = keep ⊙ z_img(t_next) + (1 − keep) ⊙ z
                later = timesteps[step : step + 1]
                known = z_image if not len(later) else sampler.add_noise(z_image, noise, later)
                latents = keep * known + (1 - keep) * latents
            if request.local_blend:  # z_edit = z_source + m ⊙ (z_edit − z_source)
                source, edited = latents.chunk(2)
                latents = torch.cat([source, source + control.blend_mask(words) * (edited - source)])
            if control is not None:
                control.step += 1
            return latents

        return after

    def attention_control(self, request: Request, guided: bool, steps: int):
        """2c. A word swap's attention (the source's maps for the first swap_steps of the steps) and the recorded
        maps (return_attention, local_blend), or None when neither is asked for; and the swapped words."""
        if request.sources is None and not request.return_attention:
            return None, None
        swap = words = None
        if request.sources is not None:
            swap, words = self.word_swap(request.sources, request.prompts, request.per_prompt)
        edits, size = request.edits, self.unet.config.sample_size
        cross_until, self_until = int(edits.swap_steps * steps), int(edits.self_swap_steps * steps)
        record = request.return_attention or request.local_blend
        control = AttentionControl(request.copies * request.batch, guided, size, swap, cross_until, self_until, record)
        return control, words

    def denoise_step(self, sampler, latents, t, context, guidance: float, generator) -> torch.Tensor:
        """3. ε = ε_u + g (ε_c − ε_u) (one pass without guidance, or for a student: g is its input), then one
        sampler step."""
        guided = uses_guidance(guidance) and not self.guidance_is_input
        model_input = sampler.scale_model_input(torch.cat([latents] * 2) if guided else latents, t)
        eps = denoise(self.unet, model_input, t, context).float()
        if guided:
            eps = guide(*eps.chunk(2), guidance)
        extra = {"generator": generator} if "generator" in inspect.signature(sampler.step).parameters else {}
        return sampler.step(eps, t, latents, **extra).prev_sample

    def decode(self, latents: torch.Tensor, output_type: str):
        """4. x = D(z0 / s) (in pixel space the denoised sample is the image)."""
        if output_type == "latent":
            return latents
        images = latents if self.vae is None else self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return to_pil(images.float()) if output_type == "pil" else images.float()

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        guidance_scale: float | None = None,
        num_inference_steps: int | None = None,
        scheduler: str | None = None,
        seed: int = 0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        callback: Callable[[int, int], None] | None = None,
        settings: SamplingSettings | None = None,
        image=None,
        strength: float = 1.0,
        mask_image=None,
        source_prompt: str | list[str] | None = None,
        swap_steps: float = SWAP_STEPS,
        self_swap_steps: float = 0.0,
        local_blend: bool = False,
        return_attention: bool = False,
    ):
        """Images for the prompts; `callback(step, total)` is called after every denoising step.
        The sampler settings are `settings` (None: `self.defaults`, the model folder's sampling.json if any),
        each replaced by diffusers' keyword for it when given (num_inference_steps, guidance_scale, scheduler).
        The edits (image=, strength=, mask_image=, source_prompt=, ...): the class's docstring."""
        # 0. check the inputs
        given = {"steps": num_inference_steps, "guidance": guidance_scale, "scheduler": scheduler}
        settings = (settings or self.defaults).override(DIFFUSERS_NAMES, **given)
        edits = EditSettings(strength, swap_steps, self_swap_steps).check()
        inputs = {"image": image, "mask_image": mask_image, "source_prompt": source_prompt, "local_blend": local_blend}
        request = self.check_inputs(
            prompt,
            negative_prompt,
            seed=seed,
            per_prompt=num_images_per_prompt,
            output_type=output_type,
            settings=settings,
            edits=edits,
            return_attention=return_attention,
            **inputs,
        )
        batch, copies = request.batch, request.copies
        # the networks under autocast where the device runs bf16 natively ("auto"); the sampler stays in fp32
        with autocast(resolve_precision(self.mixed_precision, self.device), self.device):
            sampler = make_scheduler(settings.scheduler, self.scheduler_config)
            if generator is None:  # image k gets seed + k, so any one image can be made again on its own
                generator = [torch.Generator("cpu").manual_seed(seed + k % batch) for k in range(copies * batch)]

            # 1. encode the prompt (and the negative / empty prompt for classifier-free guidance)
            context, guided = self.encode_request(request)

            # 2. timesteps and z_T; image-to-image: the image's noised latent; the attention of a word swap
            noise, latents = self.prepare_latents(sampler, request, generator)
            timesteps, z_image = sampler.timesteps, None
            if request.pixels is not None:
                z_image, timesteps, latents = self.start_from_image(sampler, request, noise, latents)
            control, words = self.attention_control(request, guided, len(timesteps))
            edit_step = self.edit_step(request, sampler, timesteps, noise, z_image, control, words)

            # 3. the denoising loop: a sampler step, then the edits' (inpainting, local blend)
            with controlled(self.unet, control) if control else nullcontext():
                for step, t in enumerate(timesteps, 1):
                    latents = self.denoise_step(sampler, latents, t, context, settings.guidance, generator)
                    latents = edit_step(step, latents)
                    if callback is not None:
                        callback(step, len(timesteps))

            # 4. decode (a word swap: its edits only)
            images = self.decode(latents[(copies - 1) * batch :], output_type)
            if not return_attention:
                return images
            maps = control.maps(self.image_size)[(copies - 1) * batch :].cpu()
            per_image = [p for p in request.prompts for _ in range(num_images_per_prompt)]
            return images, [self.attention_maps(p, m) for p, m in zip(per_image, maps, strict=True)]
