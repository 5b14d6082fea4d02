"""`t2i distill`: a trained latent diffusion model (the teacher) distilled into a few-step student.

Each step (t2i.distill.consistency for the formulas): a batch of the teacher's training latents z0 and captions;
a grid time t_n and s = t_n − k; z_t = √ᾱ_t z0 + √(1−ᾱ_t) ε; a guidance g ~ U[guidance_min, guidance_max] per
sample; the student's f_θ(z_t, t, g) against the target network's f_θ⁻(ẑ_s, s, g) at the teacher's guided DDIM
step ẑ_s; pseudo-Huber loss; then θ⁻ ← μ θ⁻ + (1 − μ) θ. Every draw of step s is a pure function of (seed, s,
process), so a resumed run continues exactly. The student is a latent-diffusion model folder (the teacher's
autoencoder, text encoder and config; its UNet takes g; diffusers' LCMScheduler and 2 steps by default).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import torch
from diffusers import DDPMScheduler, LCMScheduler
from diffusers.optimization import get_scheduler

from t2i.autoencoder.cache import LatentCache, cache_latents
from t2i.config import DistillConfig, load_config, save_config, validate
from t2i.diffusion.settings import SamplingSettings
from t2i.diffusion.train import make_optimizer, text_inputs
from t2i.diffusion.unet import denoise, guidance_embedding, sentence_token_count, takes_pooled_text
from t2i.distill.consistency import (
    consistency_output,
    ddim_step,
    pseudo_huber,
    solver_timesteps,
    student_unet,
    update_target,
)
from t2i.grid import make_grid
from t2i.hub import local_folder
from t2i.pipeline import Text2ImagePipeline, make_scheduler, save_model_config
from t2i.settings import guide
from t2i.training.batches import BatchPlan, caption_cache, sample_prompts, step_generator
from t2i.training.loop import Run, TrainingTask, start_run, train


class ConsistencyTask(TrainingTask):
    """The student (initialised from the teacher), its target network, AdamW with warm-up; the frozen teacher."""

    name, title = "distill", "consistency distillation (pseudo-Huber between f_θ and the target's f_θ⁻)"

    def __init__(self, config: DistillConfig, run: Run, teacher_dir: Path, cache: LatentCache):
        tc, device = config.distillation, run.device
        self.config, self.tc, self.run, self.cache, self.teacher_dir = config, tc, run, cache, teacher_dir
        self.teacher = Text2ImagePipeline.from_pretrained(teacher_dir, device)
        self.teacher.unet.requires_grad_(False)
        self.teacher_config = load_config(teacher_dir / "t2i_config.yaml")
        self.scale = self.teacher.vae.config.scaling_factor
        self.plan = BatchPlan.of_training(cache, tc, self.teacher_config.caption_augment)
        self.sample_prompts = sample_prompts(tc, cache)
        self.text_cache = None  # a teacher with a jointly trained text encoder encodes each batch itself
        if self.teacher_config.text.kind != "scratch":
            precision = run.accelerator.mixed_precision
            prompts = [*self.sample_prompts, ""]
            self.text_cache = caption_cache(cache.path, self.teacher.text_encoder, self.plan, prompts, precision)

        self.student = student_unet(self.teacher.unet, tc.guidance_embedding_dim).train()
        self.target = copy.deepcopy(self.student).requires_grad_(False)
        self.optimizer = make_optimizer(self.student.parameters(), tc.lr, tc.weight_decay, device)
        self.lr_schedule = get_scheduler(
            "constant_with_warmup", self.optimizer, num_warmup_steps=tc.warmup_steps, num_training_steps=tc.steps
        )
        self.schedule = DDPMScheduler.from_config(self.teacher.scheduler_config)
        self.alphas = self.schedule.alphas_cumprod.to(device)  # ᾱ_t, read at every step
        self.grid_times = solver_timesteps(self.schedule.config.num_train_timesteps, tc.solver_steps).to(device)
        self.skip = self.schedule.config.num_train_timesteps // tc.solver_steps  # k
        self.parts = {
            "student": self.student,
            "target": self.target,
            "optimizer": self.optimizer,
            "lr_schedule": self.lr_schedule,
        }
        self.teacher_images = None  # the grid's top row, drawn once

    def checkpoint_info(self) -> dict:
        return {"teacher": self.teacher.hash}

    def check_resume(self, path: Path, state: dict) -> None:
        if state.get("teacher") != self.teacher.hash:
            raise ValueError(
                f"{path} distils another teacher (UNet hash {state.get('teacher')}, this one {self.teacher.hash}): "
                "give the teacher the run started with, or a new --out"
            )

    def prepare(self, run: Run, step: int) -> None:
        self.world, self.rank = run.accelerator.num_processes, run.accelerator.process_index
        self.prepared = run.accelerator.prepare(self.student, self.optimizer, self.lr_schedule)[0]
        self.images_per_step = self.tc.batch_size * self.world
        self.empty = self.encode([""])  # the teacher's unconditional input, the same at every step

    def encode(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """The UNet's text inputs of `captions` (no token dropout: the teacher sees the whole caption)."""
        unet = self.teacher.unet
        return text_inputs(
            captions,
            self.teacher.text_encoder,
            self.text_cache,
            pooled=takes_pooled_text(unet),
            device=self.run.device,
            sentence_tokens=sentence_token_count(unet) > 0,
        )

    def batch(self, step: int):
        """Step `step`'s latents z0 = s·E(x), captions and generator (for t, ε, g): a pure function of it."""
        index = step * self.world + self.rank
        generator = step_generator(self.tc.seed, index)
        rows, captions, flips = self.plan.micro_batch(index)
        return self.cache.latents(rows, flips, generator).to(self.run.device) * self.scale, captions, generator

    def loss(self, z0: torch.Tensor, captions: list[str], generator: torch.Generator) -> torch.Tensor:
        """d(f_θ(z_t, t, g), f_θ⁻(ẑ_s, s, g)) for grid times t, guidance g and noise ε drawn from `generator`."""
        tc, device, alphas, batch = self.tc, self.run.device, self.alphas, len(z0)
        cond = self.encode(captions)
        uncond = {k: v.expand(batch, *v.shape[1:]) for k, v in self.empty.items()}
        t = self.grid_times[torch.randint(0, tc.solver_steps, (batch,), generator=generator).to(device)]
        s = (t - self.skip).clamp(min=0)  # the teacher's step lands on t − k (from the first grid time: on 0)
        noise = torch.randn(z0.shape, generator=generator).to(device)
        z_t = self.schedule.add_noise(z0, noise, t)  # z_t = √ᾱ_t z0 + √(1−ᾱ_t) ε
        g = (tc.guidance_min + (tc.guidance_max - tc.guidance_min) * torch.rand(batch, generator=generator)).to(device)
        student_cond = cond | {"timestep_cond": guidance_embedding(g, tc.guidance_embedding_dim)}
        autocast = self.run.accelerator.autocast
        with autocast():
            online = consistency_output(z_t, denoise(self.prepared, z_t, t, student_cond).float(), t, alphas)
        with torch.no_grad(), autocast():
            both = {k: torch.cat([uncond[k], cond[k]]) for k in cond}
            eps_u, eps_c = denoise(self.teacher.unet, torch.cat([z_t, z_t]), torch.cat([t, t]), both).float().chunk(2)
            eps = guide(eps_u, eps_c, g.view(-1, 1, 1, 1))  # ε^g = ε_u + g (ε_c − ε_u)
            z_s = ddim_step(z_t, eps, t, s, alphas)
            target = consistency_output(z_s, denoise(self.target, z_s, s, student_cond).float(), s, alphas)
        return pseudo_huber(online, target, tc.huber_c)

    def train_step(self, step: int) -> dict:
        loss = self.loss(*self.batch(step))
        accelerator = self.run.accelerator
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(self.student.parameters(), self.tc.grad_clip)
        self.optimizer.step()
        self.lr_schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        update_target(self.target, self.student, self.tc.target_decay)
        return {"loss": loss.detach()}

    def student_pipeline(self, unet) -> Text2ImagePipeline:
        """The student as a pipeline: the teacher's parts, `unet`, LCM's sampler on the distillation's grid."""
        return Text2ImagePipeline(
            unet, self.teacher.vae, self.teacher.text_encoder, dict(self.sampler().config), defaults=self.defaults()
        )

    def sampler(self) -> LCMScheduler:
        """LCMScheduler on the teacher's noise schedule, its grid the distillation's."""
        grid = {"original_inference_steps": self.tc.solver_steps}
        return make_scheduler("lcm", dict(self.teacher.scheduler_config) | grid)

    def defaults(self) -> SamplingSettings:
        """The student's sampling defaults: 2 steps of LCM at the grid's guidance (`t2i eval alignment` measures
        others; sampling.json can be rewritten)."""
        return SamplingSettings(steps=2, guidance=self.tc.sample_guidance, scheduler="lcm")

    @torch.no_grad()
    def sample(self, step: int, folder: Path) -> None:
        """The teacher at its defaults (top row), then the target network at each of sample_steps."""
        tc, prompts = self.tc, self.sample_prompts
        if self.teacher_images is None:
            self.teacher_images = self.teacher(prompts, seed=tc.sample_seed)
        student = self.student_pipeline(self.target)
        images, captions = list(self.teacher_images), [f"teacher: {p}" for p in prompts]
        for steps in tc.sample_steps:
            images += student(prompts, seed=tc.sample_seed, num_inference_steps=steps)
            captions += [f"{steps} step{'s' * (steps > 1)}"] * len(prompts)
        make_grid(images, captions, cols=len(prompts), cell=96).save(folder / f"samples-{step:07d}.png")

    def save_model(self, folder: Path) -> None:
        """The target network as the UNet, the teacher's autoencoder, text encoder and config, LCM's scheduler,
        sampling.json (2 steps) and the distillation's config (distill_config.yaml)."""
        self.target.save_pretrained(folder / "unet", safe_serialization=True)
        shutil.copytree(self.teacher_dir / "vae", folder / "vae", dirs_exist_ok=True)
        self.sampler().save_pretrained(folder / "scheduler")
        save_model_config(folder, self.teacher_config)
        trained_text = self.teacher_dir / "text_encoder" / "model.safetensors"
        if trained_text.is_file():
            shutil.copy2(trained_text, folder / "text_encoder" / "model.safetensors")
        self.defaults().save(folder)
        save_config(self.config, folder / "distill_config.yaml")


def distill(
    config: DistillConfig, teacher_dir: str | Path, data_dir: str | Path, out_dir: str | Path, cache_dir=None
) -> Path:
    """Distil (or resume distilling) a latent-diffusion teacher on a dataset (its own training data: its latents are
    cached with the teacher's autoencoder into `cache_dir`, default OUT/cache); returns the student's folder."""
    validate(config)
    teacher_dir = local_folder(teacher_dir)
    teacher_config = load_config(teacher_dir / "t2i_config.yaml")
    if teacher_config.family != "latent-diffusion":
        raise ValueError(f"{teacher_dir} is a {teacher_config.family} model: t2i distill takes latent diffusion")
    tc = config.distillation
    cache_dir = Path(cache_dir or Path(out_dir) / "cache")
    data = teacher_config.data
    cache_latents(
        teacher_dir / "vae",
        data_dir,
        cache_dir,
        flip=data.flip,
        split_fractions=data.split_fractions,
        mixed_precision=tc.mixed_precision,
    )
    cache = LatentCache(cache_dir, teacher_dir / "vae", data.image_size)
    run = start_run(config, tc, out_dir, precision=tc.mixed_precision)
    return train(run, ConsistencyTask(config, run, teacher_dir, cache))
