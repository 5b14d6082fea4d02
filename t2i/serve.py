"""`t2i serve`: one model in memory behind an HTTP API and a web page.

    GET  /              the web page (prompt, settings, Generate, progress, gallery, downloads)
    POST /v1/generate   {prompt, negative_prompt, steps, guidance, scheduler, seed, n} -> PNGs (base64)
    GET  /v1/model      what is loaded: name, hash, size, schedulers, defaults, limits
    GET  /v1/progress   the running generation's step and how many requests wait
    GET  /healthz       liveness, answered even while generating
    GET  /openapi.json  the schema (FastAPI); /docs renders it

Generation runs on one worker thread, off the event loop: requests queue in front of it, at most
`max_queue` wait (more get 429 with Retry-After), and each has a time limit checked at every
denoising step. Requests name no files: the model is fixed when the server starts.
"""

import asyncio
import base64
import io
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, create_model

from t2i.generate import generate_with_parameters, save_png
from t2i.pipeline import SCHEDULERS, Text2ImagePipeline

PAGE = Path(__file__).resolve().parent / "web" / "index.html"


@dataclass
class ServeLimits:
    max_steps: int = 150  # sampler steps per request
    max_images: int = 8  # images per request (n)
    max_prompt_chars: int = 1000  # characters of the prompt and of the negative prompt
    max_queue: int = 16  # requests waiting behind the running one; more get 429
    timeout_s: float = 120.0  # per request, waiting included; checked at every denoising step


class GenerationTimeout(Exception):
    pass


class ImageOut(BaseModel):
    png_base64: str = Field(description="the PNG, its text chunks holding the generation parameters")
    seed: int


class GenerateResponse(BaseModel):
    images: list[ImageOut]
    parameters: dict = Field(description="the parameters used (seed: the first image's; image k has seed + k)")
    seconds: float


def request_model(limits: ServeLimits) -> type[BaseModel]:
    """The request body with this server's limits in its schema (so they show in /openapi.json)."""
    return create_model(
        "GenerateRequest",
        __config__=ConfigDict(extra="forbid"),
        prompt=(str, Field(max_length=limits.max_prompt_chars, description="the description; '' = unconditional")),
        negative_prompt=(str, Field("", max_length=limits.max_prompt_chars, description="what to steer away from")),
        steps=(int, Field(20, ge=1, le=limits.max_steps, description="sampler steps")),
        guidance=(float, Field(3.0, ge=0, le=50, allow_inf_nan=False, description="classifier-free guidance")),
        scheduler=(Literal[tuple(SCHEDULERS)], Field("dpm++", description="the sampler")),
        seed=(int | None, Field(None, ge=0, le=2**32 - 1, description="seed of the first image; none = random")),
        n=(int, Field(1, ge=1, le=limits.max_images, description="number of images")),
    )


class Worker:
    """The one generation thread, the count of requests in the system, and the running one's progress."""

    def __init__(self, pipe: Text2ImagePipeline):
        self.pipe = pipe
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self.in_system = 0  # running + waiting; changed only on the event loop
        self.progress = {"step": 0, "total": 0}

    def run(self, body: dict, deadline: float) -> list[ImageOut]:
        def check(step: int, total: int) -> None:
            self.progress = {"step": step, "total": total}
            if time.monotonic() > deadline:
                raise GenerationTimeout

        if time.monotonic() > deadline:  # waited too long in the queue
            raise GenerationTimeout
        made = generate_with_parameters(
            self.pipe, body["prompt"], body["negative_prompt"], body["n"], body["seed"], body["steps"],
            body["guidance"], body["scheduler"], callback=check,
        )  # fmt: skip
        self.progress = {"step": 0, "total": 0}
        out = []
        for image, parameters in made:
            buffer = io.BytesIO()
            save_png(image, parameters, buffer)
            out.append(ImageOut(png_base64=base64.b64encode(buffer.getvalue()).decode(), seed=parameters.seed))
        return out


def create_app(pipe: Text2ImagePipeline, limits: ServeLimits | None = None, api_key: str | None = None) -> FastAPI:
    limits = limits or ServeLimits()
    worker = Worker(pipe)
    GenerateRequest = request_model(limits)
    app = FastAPI(title="t2i", version="1", description="Text-to-image generation with a t2i latent diffusion model")
    bearer = HTTPBearer(auto_error=False)

    def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if api_key and (credentials is None or not secrets.compare_digest(credentials.credentials, api_key)):
            raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "busy": worker.in_system > 0}

    @app.get("/v1/model", dependencies=[Depends(authorize)])
    def model() -> dict:
        parameters = sum(p.numel() for m in (pipe.unet, pipe.vae) for p in m.parameters())
        size = pipe.unet.config.sample_size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        return {
            "name": pipe.name,
            "hash": pipe.hash,
            "image_size": size,
            "parameters": parameters,
            "schedulers": list(SCHEDULERS),
            "defaults": {"steps": 20, "guidance": 3.0, "scheduler": "dpm++", "n": 1},
            "limits": vars(limits),
            "api_key_required": bool(api_key),
        }

    @app.get("/v1/progress", dependencies=[Depends(authorize)])
    def progress() -> dict:
        return {**worker.progress, "running": worker.in_system > 0, "waiting": max(0, worker.in_system - 1)}

    @app.post("/v1/generate", response_model=GenerateResponse, dependencies=[Depends(authorize)])
    async def generate(body: GenerateRequest) -> GenerateResponse:  # type: ignore[valid-type]
        if worker.in_system > limits.max_queue:  # one running + max_queue waiting
            raise HTTPException(429, "too many requests waiting; retry later", headers={"Retry-After": "5"})
        request = body.model_dump()
        if request["seed"] is None:
            request["seed"] = secrets.randbelow(2**31)
        worker.in_system += 1
        start = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            images = await loop.run_in_executor(worker.executor, worker.run, request, start + limits.timeout_s)
        except GenerationTimeout:
            message = f"generation took longer than the server's limit of {limits.timeout_s} s"
            raise HTTPException(503, message, headers={"Retry-After": "5"}) from None
        finally:
            worker.in_system -= 1
        return GenerateResponse(images=images, parameters=request, seconds=round(time.monotonic() - start, 3))

    return app


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 7860, api_key: str | None = None,
          limits: ServeLimits | None = None) -> None:  # fmt: skip
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: anyone who can reach this machine can use the server"
              + ("" if api_key else " (no --api-key set)"))  # fmt: skip
    app = create_app(Text2ImagePipeline.from_pretrained(model_dir), limits, api_key)
    print(f"t2i serving {model_dir} at http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")
