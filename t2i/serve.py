"""`t2i serve`: one model in memory behind an HTTP API and a web page.

    GET  /              the web page (prompt, settings, Generate, progress, gallery, downloads)
    POST /v1/generate   {prompt, negative_prompt, seed, n, and the family's settings (diffusion: steps, guidance,
                        scheduler; GAN: truncation; token transformer: guidance, temperature, top_k, top_p);
                        diffusion: attention} -> PNGs (base64), with a heat map per prompt token if attention
    POST /v1/edit       the same, and (diffusion models) image (base64 or a data: URL), strength, mask (white =
                        repaint), source_prompt and swap_steps (a word swap: each image with its source's)
    POST /v1/live       {prompt, seed, guidance} -> one PNG from the live student (`--live`: a distilled model, 1
                        step), on its own thread; a request overtaken by a newer one before it runs gets 409
    GET  /v1/model      what is loaded: name, hash, family, size, its settings with their ranges, defaults, limits,
                        and the live student (or null)
    GET  /v1/progress   the running generation's step and how many requests wait
    GET  /healthz       liveness, answered even while generating
    GET  /openapi.json  the schema (FastAPI); /docs renders it with Swagger UI served from the package (no CDN)

Generation runs on one worker thread, off the event loop: requests queue in front of it, at most
`max_queue` wait (more get 429 with Retry-After), and each has a time limit checked at every
denoising step; a request whose client has gone away is dropped at the next step. Before any body is
read, the API key is checked (in constant time, on the header's bytes) and the body's size is bounded;
the request head and body each must arrive within `read_timeout_s`. Errors never echo the input back.
Requests name no files: the model (of any family, t2i.families) is fixed when the server starts. Uploaded
images are bounded in bytes (and /v1/edit's body limit grows by two of them), in pixels and in aspect ratio (read
from the header), and decoded only when their request runs, after the queue was checked; only PNG, JPEG, WebP, BMP
and GIF are opened; anything else is a 422 naming the field.
"""

import asyncio
import base64
import binascii
import dataclasses
import hmac
import io
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from fastapi_offline import FastAPIOffline
from PIL import Image
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from t2i.data.check import open_rgb
from t2i.editing import Edited, edit_with_parameters, heat_map, size_problem
from t2i.families import load_pipeline, trained_parameters
from t2i.generate import generate_with_parameters, save_png
from t2i.settings import IMAGE_TO_IMAGE_STRENGTH, INPAINTING_STRENGTH, SWAP_STEPS, ServeLimits

PAGE = Path(__file__).resolve().parent / "web" / "index.html"


LIVE_STEPS = 1  # the live student's steps: one UNet evaluation per keystroke


class GenerationTimeout(Exception):
    pass


class Superseded(Exception):
    pass


class ClientGone(Exception):
    pass


class TokenMap(BaseModel):
    token: str = Field(description="a word piece of the prompt")
    png_base64: str = Field(description="the image under this token's attention map (red: most attention)")


class ImageOut(BaseModel):
    png_base64: str = Field(description="the PNG, its text chunks holding the generation parameters")
    seed: int
    source_png_base64: str | None = Field(None, description="a word swap's source image (same seed)")
    attention: list[TokenMap] | None = Field(None, description="with attention: one heat map per prompt token")


class GenerateResponse(BaseModel):
    images: list[ImageOut]
    parameters: dict = Field(description="the parameters used (seed: the first image's; image k has seed + k)")
    seconds: float


def _unicode(text: str) -> str:
    text.encode("utf-8")  # a lone surrogate ("\ud800") is valid JSON but no text: UnicodeEncodeError -> 422
    return text


Text = Annotated[str, AfterValidator(_unicode)]
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")


class BadUpload(ValueError):
    """An upload that passed its header's checks and then failed to decode: a 422 naming its field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.detail = [{"loc": ["body", field], "msg": message, "type": "value_error"}]


@dataclass
class Upload:
    """An uploaded image file whose header passed the checks. It is decoded only when its request runs, one at a
    time, so that the requests waiting in the queue hold bytes, not pixels."""

    field: str
    data: bytes
    size: tuple[int, int]

    def decode(self) -> Image.Image:
        """RGB; a mask as grey levels, 255 = repaint, its transparent parts kept (0)."""
        try:
            if self.field == "mask":
                with Image.open(io.BytesIO(self.data), formats=UPLOAD_FORMATS) as image:
                    rgba = image.convert("RGBA")
                grey, alpha = rgba.convert("L"), rgba.getchannel("A")
                return Image.composite(grey, Image.new("L", grey.size, 0), alpha)  # transparent: kept
            return open_rgb(io.BytesIO(self.data))[0]
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
            raise BadUpload(self.field, "a damaged image file: it could not be decoded") from None


def read_upload(text: str, limits: ServeLimits, field: str) -> Upload:
    """An uploaded image file in base64 (or a data: URL), its format and size read from the header and checked.
    A ValueError says what is wrong (pydantic answers it as a 422 naming the field)."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise ValueError("a data: URL must be base64 (data:image/png;base64,...)")
    if len(text) > limits.upload_chars:
        raise ValueError(f"image file over {limits.max_upload_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 text") from None
    if len(data) > limits.max_upload_bytes:
        raise ValueError(f"image file over {limits.max_upload_bytes} bytes")
    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as header:
            size = header.size
    except Image.DecompressionBombError:
        raise ValueError(f"over the limit of {limits.max_upload_pixels} pixels (a decompression bomb)") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise ValueError(f"not an image file of a format taken here ({', '.join(UPLOAD_FORMATS)})") from None
    problem = size_problem(*size, limits.max_upload_pixels, limits.max_upload_aspect)
    if problem:
        raise ValueError(problem)
    return Upload(field, data, size)


def upload_field(limits: ServeLimits, description: str, field: str):
    def read(text: str) -> Upload:
        return read_upload(text, limits, field)

    return Annotated[str, AfterValidator(read)] | None, Field(None, description=description)


def setting_fields(limits: ServeLimits, defaults) -> dict:
    """One request field per sampling setting of the model's family, its default the model's own and its range
    the setting's (steps also capped by the server's limit)."""
    fields = {}
    for spec in type(defaults).describe():
        name, default = spec["name"], getattr(defaults, spec["name"])
        if spec["choices"]:
            fields[name] = (Literal[spec["choices"]], Field(default, description=spec["help"]))
            continue
        high = min(spec["high"], limits.max_steps) if name == "steps" else spec["high"]
        kind = int if spec["type"] == "int" else float
        fields[name] = (kind, Field(default, ge=spec["low"], le=high, allow_inf_nan=False, description=spec["help"]))
    return fields


MAX_KEYS = 64  # a body with more keys is refused whole, before pydantic names each unknown one (600,000: 4.4 s)


def _few_keys(body):
    if isinstance(body, dict) and len(body) > MAX_KEYS:
        raise ValueError(f"{len(body)} keys: a request has at most {MAX_KEYS}")
    return body


def request_model(limits: ServeLimits, pipe) -> type[BaseModel]:
    """The request body with this server's limits and the model's settings and defaults in its schema."""
    attention = {"attention": (bool, Field(False, description="a heat map per prompt token"))}
    return create_model(
        "GenerateRequest",
        __config__=ConfigDict(extra="forbid"),
        __validators__={"few_keys": model_validator(mode="before")(_few_keys)},
        prompt=(Text, Field(max_length=limits.max_prompt_chars, description="the description; '' = unconditional")),
        negative_prompt=(Text, Field("", max_length=limits.max_prompt_chars, description="what to steer away from")),
        seed=(int | None, Field(None, ge=0, le=2**32 - 1, description="seed of the first image; none = random")),
        n=(int, Field(1, ge=1, le=limits.max_images, description="number of images")),
        **setting_fields(limits, pipe.defaults),
        **(attention if pipe.takes_edits else {}),
    )


def edit_request_model(limits: ServeLimits, generate_request: type[BaseModel]) -> type[BaseModel]:
    """/v1/edit's body: /v1/generate's and what to edit (an image, a mask, a source prompt)."""
    strength = f"0 keeps the image, 1 ignores it (default {IMAGE_TO_IMAGE_STRENGTH}; {INPAINTING_STRENGTH} with a mask)"
    swap_steps = "share of the steps drawn with the source prompt's cross-attention"
    return create_model(
        "EditRequest",
        __base__=generate_request,
        image=upload_field(limits, "the image to start from: a PNG, JPEG, WebP, BMP or GIF file in base64", "image"),
        mask=upload_field(limits, "where to repaint (white) and keep (black or transparent); the image's size", "mask"),
        strength=(float | None, Field(None, ge=0, le=1, allow_inf_nan=False, description=strength)),
        source_prompt=(Text | None, Field(None, max_length=limits.max_prompt_chars, description="the swap's source")),
        local_blend=(bool, Field(False, description="keep the source wherever the swapped words do not attend")),
        swap_steps=(float, Field(SWAP_STEPS, ge=0, le=1, allow_inf_nan=False, description=swap_steps)),
    )


def edit_problem(body: dict) -> dict | None:
    """What is missing or inconsistent in an edit request, as a 422 detail naming the field (None: nothing)."""
    image, mask = body["image"], body["mask"]
    problems = [
        ("image", image is None and body["source_prompt"] is None, "give an image, a source_prompt, or both"),
        ("mask", mask is not None and image is None, "a mask needs an image"),
        ("strength", body["strength"] is not None and image is None, "strength needs an image"),
        ("local_blend", body["local_blend"] and body["source_prompt"] is None, "local_blend needs a source_prompt"),
        (
            "mask",
            mask is not None and image is not None and mask.size != image.size,
            f"the mask must have the image's size ({image.size[0]}×{image.size[1]})" if image else "",
        ),
    ]
    for field, wrong, message in problems:
        if wrong:
            return {"loc": ["body", field], "msg": message, "type": "value_error"}
    return None


def _error(status: int, detail, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status, headers)


class RequestGuard:
    """ASGI middleware in front of the app: the API key (on /v1/), then the body's size and read time.

    The key is compared in constant time on bytes, so a non-ASCII key works and a non-ASCII header is just
    wrong. A body over the limit is refused from its Content-Length, or as soon as more bytes arrive; a body
    that stops arriving gets 408. All of this happens before the app parses anything."""

    def __init__(self, app, api_key: str | None, limits: ServeLimits):
        self.app, self.limits = app, limits
        self.key = api_key.encode("utf-8") if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.key and scope["path"].startswith("/v1/"):
            scheme, _, credentials = headers.get(b"authorization", b"").partition(b" ")
            if not (hmac.compare_digest(credentials.strip(), self.key) and scheme.lower() == b"bearer"):
                message = "missing or wrong API key (Authorization: Bearer KEY)"
                return await _error(401, message, {"WWW-Authenticate": "Bearer", "Connection": "close"})(
                    scope, receive, send
                )
        limit, length = self.limits.body_limit(scope["path"]), headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            close = {"Connection": "close"}
            return await _error(413, f"request body over {limit} bytes", close)(scope, receive, send)
        deadline, received, complete = time.monotonic() + self.limits.read_timeout_s, 0, False

        async def bounded_receive():
            nonlocal received, complete
            if complete:  # after the body: only the disconnect message is left to wait for, unbounded
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise HTTPException(408, "request body not received in time", {"Connection": "close"}) from None
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"request body over {limit} bytes", {"Connection": "close"})
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return await self.app(scope, bounded_receive, send)


def head_timeout_protocol(seconds: float):
    """uvicorn's h11 protocol, closing a connection whose request line and headers take longer than
    `seconds` (uvicorn itself bounds only idle keep-alive time)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.head_timer = self.loop.call_later(seconds, self.head_timeout)

        def head_timeout(self) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # no complete head yet
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.head_timer.cancel()
            self.head_timer = self.loop.call_later(seconds, self.head_timeout)

        def connection_lost(self, exc) -> None:
            self.head_timer.cancel()
            super().connection_lost(exc)

    return HeadTimeoutProtocol


class Worker:
    """The one generation thread, the count of requests in the system, and the running one's progress."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self.in_system = 0  # running + waiting; changed only on the event loop
        self.progress = {"step": 0, "total": 0}
        self.settings = [f.name for f in dataclasses.fields(pipe.defaults)]

    def run(self, body: dict, deadline: float, gone: threading.Event) -> list[ImageOut]:
        def check(step: int, total: int) -> None:
            self.progress = {"step": step, "total": total}
            if time.monotonic() > deadline:
                raise GenerationTimeout
            if gone.is_set():
                raise ClientGone

        check(0, 0)  # waited too long in the queue, or the client left while waiting
        try:
            body = {k: v.decode() if isinstance(v, Upload) else v for k, v in body.items()}
            settings = dataclasses.replace(self.pipe.defaults, **{k: body[k] for k in self.settings})
            request = (self.pipe, body["prompt"], body["negative_prompt"], body["n"], body["seed"], settings, check)
            if self.pipe.takes_edits:
                edits = {k: body[k] for k in EDIT_FIELDS if k in body}
                made = edit_with_parameters(*request, **edits)
            else:
                made = [Edited(image, parameters) for image, parameters in generate_with_parameters(*request)]
        finally:
            self.progress = {"step": 0, "total": 0}
        return [
            ImageOut(
                png_base64=png_base64(m.image, m.parameters),
                seed=m.parameters.seed,
                source_png_base64=png_base64(m.source, m.source_parameters) if m.source else None,
                attention=[
                    TokenMap(token=token, png_base64=png_base64(heat_map(m.image, weights)))
                    for token, weights in zip(m.attention.tokens, m.attention.maps, strict=True)
                ]
                if m.attention
                else None,
            )
            for m in made
        ]


class LiveWorker:
    """The live student's thread. Every request takes a ticket when it arrives; one whose ticket is no longer the
    newest when its turn comes (the user typed on) is dropped unrun: only the latest prompt is drawn."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live")
        self.newest = 0  # the last ticket handed out; changed only on the event loop

    def ticket(self) -> int:
        self.newest += 1
        return self.newest

    def run(self, ticket: int, prompt: str, seed: int, guidance: float) -> ImageOut:
        if ticket != self.newest:
            raise Superseded
        settings = dataclasses.replace(self.pipe.defaults, steps=LIVE_STEPS, guidance=guidance)
        [(image, parameters)] = generate_with_parameters(self.pipe, prompt, seed=seed, settings=settings)
        return ImageOut(png_base64=png_base64(image, parameters), seed=seed)


def live_request_model(limits: ServeLimits, live) -> type[BaseModel]:
    """/v1/live's body: the prompt, a seed, the student's guidance (its range and default its own)."""
    guidance = setting_fields(limits, live.defaults)["guidance"]
    return create_model(
        "LiveRequest",
        __config__=ConfigDict(extra="forbid"),
        prompt=(Text, Field(max_length=limits.max_prompt_chars, description="the prompt as typed so far")),
        seed=(int, Field(0, ge=0, le=2**32 - 1, description="the image's seed")),
        guidance=guidance,
    )


def check_live(live) -> None:
    """A live model must be a distilled student (its guidance an input: one UNet pass per step)."""
    if live is not None and not live.guidance_is_input:
        raise ValueError(f"--live {live.name}: not a distilled student; make one with `t2i distill`")


EDIT_FIELDS = (
    "image",
    "strength",
    "mask",
    "source_prompt",
    "swap_steps",
    "local_blend",
    "attention",
)  # edit_with_parameters'


def png_base64(image: Image.Image, parameters=None) -> str:
    """A PNG in base64, with the parameters that made it in its text chunks (heat maps have none)."""
    buffer = io.BytesIO()
    if parameters is None:
        image.save(buffer, format="PNG")
    else:
        save_png(image, parameters, buffer)
    return base64.b64encode(buffer.getvalue()).decode()


async def _watch_disconnect(request: Request, gone: threading.Event) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(0.1)
    gone.set()


def check_api_key(api_key: str | None) -> None:
    """An empty key would serve without one, silently: refused."""
    if api_key is not None and not api_key.strip():
        raise ValueError("the API key (--api-key or T2I_API_KEY) is empty: give one, or unset it to serve without")


def model_info(pipe, limits: ServeLimits, generate_request: type[BaseModel], api_key: str | None) -> dict:
    """What /v1/model says: the model, its settings (each with its model default, its range with the server's
    limits, and its request schema), its edits and the server's limits."""
    schema = generate_request.model_json_schema()["properties"]
    settings = [
        spec
        | {"default": getattr(pipe.defaults, name), "high": schema[name].get("maximum", spec["high"])}
        | {"schema": schema[name]}
        for spec in type(pipe.defaults).describe()
        for name in [spec["name"]]
    ]
    return {
        "name": pipe.name,
        "hash": pipe.hash,
        "family": pipe.family,
        "image_size": pipe.image_size,
        "parameters": trained_parameters(pipe),  # without the frozen text encoder
        "settings": settings,
        "takes_negative_prompt": pipe.takes_negative_prompt,
        "takes_edits": pipe.takes_edits,
        "edit_defaults": {"strength": IMAGE_TO_IMAGE_STRENGTH, "swap_steps": SWAP_STEPS},  # the page's too
        "defaults": dataclasses.asdict(pipe.defaults) | {"n": 1},
        "limits": vars(limits),
        "api_key_required": bool(api_key),
        "live": None,
    }


async def answer(worker: Worker, limits: ServeLimits, parameters: dict, request: Request) -> GenerateResponse:
    """Queue one request for the worker and wait for its images."""
    if worker.in_system > limits.max_queue:  # one running + max_queue waiting
        raise HTTPException(429, "too many requests waiting; retry later", headers={"Retry-After": "5"})
    if parameters["seed"] is None:
        parameters["seed"] = secrets.randbelow(2**31)
    worker.in_system += 1
    start, gone = time.monotonic(), threading.Event()
    watcher = asyncio.create_task(_watch_disconnect(request, gone))
    try:
        loop = asyncio.get_running_loop()
        deadline = start + limits.timeout_s
        images = await loop.run_in_executor(worker.executor, worker.run, parameters, deadline, gone)
    except GenerationTimeout:
        message = f"generation took longer than the server's limit of {limits.timeout_s} s"
        raise HTTPException(503, message, headers={"Retry-After": "5"}) from None
    except ClientGone:
        raise HTTPException(499, "client closed the request") from None  # nobody reads this answer
    except BadUpload as error:
        raise HTTPException(422, error.detail) from None
    finally:
        watcher.cancel()
        worker.in_system -= 1
    shown = {k: v for k, v in parameters.items() if k not in ("image", "mask")}  # the uploads are not echoed
    return GenerateResponse(images=images, parameters=shown, seconds=round(time.monotonic() - start, 3))


def create_app(pipe, limits: ServeLimits | None = None, api_key: str | None = None, live=None):
    """The app over `pipe`; `live`: a distilled student's pipeline for /v1/live (None: no live mode)."""
    check_api_key(api_key)
    check_live(live)
    limits = limits or ServeLimits()
    worker = Worker(pipe)
    GenerateRequest = request_model(limits, pipe)
    EditRequest = edit_request_model(limits, GenerateRequest)
    app = FastAPIOffline(
        title="t2i", version="1", description="Text-to-image generation with a t2i latent diffusion model"
    )
    # the key itself is checked by RequestGuard before any body is read; this only declares it in the schema
    keyed = [Depends(HTTPBearer(auto_error=False))] if api_key else []
    unauthorized = {401: {"description": "missing or wrong API key"}} if api_key else {}

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        """422 naming each bad field, without echoing the input (which may be huge, NaN or not text)."""
        detail = [
            {"loc": [str(part)[:100] for part in e["loc"]], "msg": str(e["msg"])[:200], "type": e["type"]}
            for e in error.errors()[:20]
        ]
        return _error(422, detail)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "busy": worker.in_system > 0}

    @app.get("/v1/model", dependencies=keyed, responses=unauthorized)
    def model() -> dict:
        info = model_info(pipe, limits, GenerateRequest, api_key)
        if live is not None:
            guidance = live.defaults.guidance
            info["live"] = {"name": live.name, "hash": live.hash, "steps": LIVE_STEPS, "guidance": guidance}
        return info

    @app.get("/v1/progress", dependencies=keyed, responses=unauthorized)
    def progress() -> dict:
        return {**worker.progress, "running": worker.in_system > 0, "waiting": max(0, worker.in_system - 1)}

    errors = unauthorized | {
        408: {"description": "the request body did not arrive in time"},
        413: {"description": "request body over the route's limit"},
        429: {"description": "too many requests waiting; retry after the Retry-After header's seconds"},
        503: {"description": f"generation took longer than the server's limit ({limits.timeout_s} s)"},
    }

    @app.post("/v1/generate", response_model=GenerateResponse, dependencies=keyed, responses=errors)
    async def generate(body: GenerateRequest, request: Request) -> GenerateResponse:  # type: ignore[valid-type]
        return await answer(worker, limits, body.model_dump(), request)

    if live is not None:
        live_worker, LiveRequest = LiveWorker(live), live_request_model(limits, live)

        @app.post(
            "/v1/live",
            response_model=ImageOut,
            dependencies=keyed,
            responses=unauthorized | {409: {"description": "a newer live request came before this one ran"}},
        )
        async def draw_live(body: LiveRequest) -> ImageOut:  # type: ignore[valid-type]
            ticket = live_worker.ticket()
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(
                    live_worker.executor, live_worker.run, ticket, body.prompt, body.seed, body.guidance
                )
            except Superseded:
                raise HTTPException(409, "superseded by a newer live request") from None

    @app.post(
        "/v1/edit",
        response_model=GenerateResponse,
        dependencies=keyed,
        responses=errors | {400: {"description": "the loaded model's family does not edit images"}},
    )
    async def edit(body: EditRequest, request: Request) -> GenerateResponse:  # type: ignore[valid-type]
        if not pipe.takes_edits:
            raise HTTPException(400, f"the loaded model is a {pipe.family} model: editing needs a diffusion model")
        uploads = {"image": body.image, "mask": body.mask}  # checked Uploads, not the str their schema shows
        parameters = body.model_dump(exclude=set(uploads)) | uploads
        problem = edit_problem(parameters)
        if problem:
            return _error(422, [problem])
        if parameters["image"] is None:
            parameters["strength"] = 1.0  # a word swap alone starts from noise
        elif parameters["strength"] is None:
            parameters["strength"] = IMAGE_TO_IMAGE_STRENGTH if parameters["mask"] is None else INPAINTING_STRENGTH
        return await answer(worker, limits, parameters, request)

    return RequestGuard(app, api_key, limits)


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    api_key: str | None = None,
    limits: ServeLimits | None = None,
    live_dir: str | Path | None = None,
) -> None:
    """Serve a model folder (and `live_dir`, a distilled student for the page's live mode) until stopped."""
    import uvicorn

    limits = limits or ServeLimits()
    check_api_key(api_key)  # before the model loads
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: listening on {host}: anyone who can reach this machine can use the server"
            + ("" if api_key else " (no --api-key set)")
        )
    live = load_pipeline(live_dir) if live_dir else None
    app = create_app(load_pipeline(model_dir), limits, api_key, live)
    print(f"t2i serving {model_dir} at http://{host}:{port}/ (API docs at /docs)")
    protocol = head_timeout_protocol(limits.read_timeout_s)
    uvicorn.run(app, host=host, port=port, log_level="info", http=protocol, timeout_keep_alive=5)
