import base64
import io
import threading

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from t2i.pipeline import Text2ImagePipeline
from t2i.serve import ServeLimits, create_app


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return Text2ImagePipeline.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def client(pipe):
    return TestClient(create_app(pipe, ServeLimits(max_steps=10, max_images=3, max_prompt_chars=50)))


def test_generate_returns_pngs_with_parameters_and_seeds(client):
    body = {"prompt": "She wears eyeglasses.", "steps": 3, "seed": 11, "n": 2, "scheduler": "euler-a"}
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 200
    result = response.json()
    assert [image["seed"] for image in result["images"]] == [11, 12]
    assert result["parameters"] | body == result["parameters"] and result["parameters"]["guidance"] == 3.0
    image = Image.open(io.BytesIO(base64.b64decode(result["images"][1]["png_base64"])))
    assert image.size == (32, 32) and "Seed: 12" in image.text["parameters"]
    again = client.post("/v1/generate", json=body).json()
    assert again["images"][1]["png_base64"] == result["images"][1]["png_base64"]  # same seed, same bytes


def test_no_seed_means_a_random_one_that_is_reported(client):
    seeds = {client.post("/v1/generate", json={"prompt": "", "steps": 1}).json()["images"][0]["seed"] for _ in range(3)}
    assert len(seeds) > 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("steps", 11),
        ("steps", 0),
        ("n", 4),
        ("prompt", "x" * 51),
        ("negative_prompt", "x" * 51),
        ("guidance", -1),
        ("scheduler", "plms"),
        ("seed", -5),
        ("model_path", "/etc/passwd"),
    ],
)
def test_each_invalid_field_is_a_4xx_naming_it(client, field, value):
    response = client.post("/v1/generate", json={"prompt": "a hat", field: value})
    assert response.status_code == 422
    assert [field] == [d["loc"][-1] for d in response.json()["detail"]]


def test_model_health_and_schema(client):
    info = client.get("/v1/model").json()
    assert info["image_size"] == 32 and info["family"] == "latent-diffusion" and info["limits"]["max_steps"] == 10
    settings = {s["name"]: s for s in info["settings"]}
    assert "dpm++" in settings["scheduler"]["choices"] and settings["steps"]["schema"]["maximum"] == 10
    assert client.get("/healthz").json() == {"status": "ok", "busy": False}
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["GenerateRequest"]["properties"]["steps"]["maximum"] == 10
    assert '<button id="generate"' in client.get("/").text


def test_api_key_is_required_when_set(pipe):
    client = TestClient(create_app(pipe, api_key="s3cret"))
    assert client.get("/v1/model").status_code == 401
    assert client.get("/v1/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_full_queue_gets_429_while_health_answers(pipe):
    """One request runs (held at its first step), one waits; the next is refused."""
    release, started = threading.Event(), threading.Event()

    class HeldPipe:
        name, hash, family, defaults = pipe.name, pipe.hash, pipe.family, pipe.defaults
        takes_edits = False

        def __call__(self, *args, callback, **kwargs):
            started.set()
            release.wait(30)
            return pipe(*args, callback=callback, **kwargs)

    client = TestClient(create_app(HeldPipe(), ServeLimits(max_queue=1)))
    body = {"prompt": "a hat", "steps": 1}
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(client.post("/v1/generate", json=body))) for _ in range(2)
    ]
    threads[0].start()
    assert started.wait(30)
    threads[1].start()
    for _ in range(100):
        if client.get("/v1/progress").json()["waiting"] == 1:
            break
        threading.Event().wait(0.05)
    refused = client.post("/v1/generate", json=body)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
    assert client.get("/healthz").json() == {"status": "ok", "busy": True}
    release.set()
    for thread in threads:
        thread.join(60)
    assert [r.status_code for r in results] == [200, 200]


def test_a_request_over_the_time_limit_gets_503(pipe):
    client = TestClient(create_app(pipe, ServeLimits(timeout_s=0.0)))
    response = client.post("/v1/generate", json={"prompt": "a hat", "steps": 3})
    assert response.status_code == 503 and "limit" in response.json()["detail"]


def _upload(image: Image.Image, format: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return base64.b64encode(buffer.getvalue()).decode()


def _image(png_base64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(png_base64)))


@pytest.fixture(scope="module")
def face(client) -> str:
    return client.post("/v1/generate", json={"prompt": "She has blond hair.", "steps": 3, "seed": 1}).json()["images"][
        0
    ]["png_base64"]


def test_edit_an_uploaded_image_and_inpaint_a_mask(client, face):
    body = {"prompt": "She has black hair.", "steps": 3, "seed": 2, "image": "data:image/png;base64," + face}
    result = client.post("/v1/edit", json=body).json()
    assert "image" not in result["parameters"] and result["parameters"]["strength"] == 0.6  # the default
    assert "Denoising strength: 0.6" in _image(result["images"][0]["png_base64"]).text["parameters"]
    kept = client.post("/v1/edit", json=body | {"strength": 0.0}).json()["images"][0]["png_base64"]
    assert kept != face and _image(kept).size == (32, 32)  # strength 0: the image through the autoencoder

    mask = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # transparent: kept
    mask.paste((255, 255, 255, 255), (0, 0, 16, 32))  # the left half repainted
    result = client.post("/v1/edit", json=body | {"mask": _upload(mask)}).json()
    text = _image(result["images"][0]["png_base64"]).text["parameters"]
    assert "Inpainted: True" in text and "Denoising strength: 1.0" in text
    nothing = client.post("/v1/edit", json=body | {"mask": _upload(Image.new("RGBA", (32, 32)))}).json()
    everything = client.post("/v1/edit", json=body | {"mask": _upload(Image.new("L", (32, 32), 255))}).json()
    assert nothing["images"][0]["png_base64"] != everything["images"][0]["png_base64"]
    free = client.post("/v1/edit", json=body | {"strength": 1.0}).json()  # a mask over everything: no image left
    assert _image(everything["images"][0]["png_base64"]).tobytes() == _image(free["images"][0]["png_base64"]).tobytes()


def test_a_word_swap_returns_its_source_and_attention_maps(client):
    body = {"prompt": "She has black hair.", "source_prompt": "She has blond hair.", "steps": 2, "seed": 4, "n": 2}
    result = client.post("/v1/edit", json=body | {"attention": True}).json()
    plain = client.post("/v1/generate", json={"prompt": "She has blond hair.", "steps": 2, "seed": 5}).json()
    second = result["images"][1]
    assert second["seed"] == 5
    assert "Source prompt: She has blond hair." in _image(second["png_base64"]).text["parameters"]
    assert _image(second["source_png_base64"]).tobytes() == _image(plain["images"][0]["png_base64"]).tobytes()
    source_text = _image(second["source_png_base64"]).text["parameters"]
    assert source_text.startswith("She has blond hair.\n") and "Source prompt" not in source_text
    assert [m["token"] for m in second["attention"]] == ["she", "has", "black", "hair", "."]
    assert _image(second["attention"][2]["png_base64"]).size == (32, 32)
    maps = client.post("/v1/generate", json={"prompt": "A hat.", "steps": 2, "attention": True}).json()
    assert [m["token"] for m in maps["images"][0]["attention"]] == ["a", "hat", "."]
    assert client.post("/v1/generate", json={"prompt": "A hat.", "steps": 2}).json()["images"][0]["attention"] is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({}, "image", "give an image, a source_prompt, or both"),
        ({"source_prompt": "x", "strength": 0.5}, "strength", "strength needs an image"),
        ({"source_prompt": "x", "mask": "MASK"}, "mask", "a mask needs an image"),
        ({"image": "FACE", "mask": "SMALL"}, "mask", "the image's size (32×32)"),
        ({"image": "FACE", "swap_steps": 1.5}, "swap_steps", "less than or equal to 1"),
        ({"image": "FACE", "local_blend": True}, "local_blend", "local_blend needs a source_prompt"),
        ({"image": "FACE", "strength": -0.1}, "strength", "greater than or equal to 0"),
    ],
)
def test_inconsistent_edits_are_422_naming_the_field(client, face, fields, field, message):
    uploads = {"FACE": face, "MASK": _upload(Image.new("L", (32, 32))), "SMALL": _upload(Image.new("L", (16, 16)))}
    body = {"prompt": "a hat", "steps": 1} | {k: uploads.get(v, v) for k, v in fields.items()}
    response = client.post("/v1/edit", json=body)
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"][-1] == field and message in detail["msg"]
    assert client.post("/v1/generate", json={"prompt": "a hat", "image": face}).status_code == 422  # edits: /v1/edit


def test_models_that_do_not_edit_say_so(tiny_gan):
    from t2i.families import load_pipeline

    client = TestClient(create_app(load_pipeline(tiny_gan)))
    assert client.get("/v1/model").json()["takes_edits"] is False
    response = client.post("/v1/edit", json={"prompt": "a hat", "source_prompt": "a cap"})
    assert response.status_code == 400 and "gan model" in response.json()["detail"]
    assert client.post("/v1/generate", json={"prompt": "a hat", "attention": True}).status_code == 422


@pytest.fixture(scope="module")
def student(tiny_student):
    return Text2ImagePipeline.from_pretrained(tiny_student)


def test_live_draws_one_step_of_the_student_and_the_model_says_so(pipe, student, client):
    assert client.get("/v1/model").json()["live"] is None
    with pytest.raises(ValueError, match="not a distilled student"):
        create_app(pipe, live=pipe)
    live = TestClient(create_app(pipe, ServeLimits(max_prompt_chars=50), live=student))
    info = live.get("/v1/model").json()["live"]
    assert info == {"name": student.name, "hash": student.hash, "steps": 1, "guidance": student.defaults.guidance}
    result = live.post("/v1/live", json={"prompt": "She wears eyeglasses.", "seed": 4}).json()
    image = Image.open(io.BytesIO(base64.b64decode(result["png_base64"])))
    assert result["seed"] == 4 and "Steps: 1, Sampler: lcm" in image.text["parameters"]
    again = live.post("/v1/live", json={"prompt": "She wears eyeglasses.", "seed": 4}).json()
    assert again["png_base64"] == result["png_base64"]
    for bad in ({"prompt": "x" * 51}, {"prompt": "a", "guidance": 99}, {"prompt": "a", "steps": 4}):
        assert live.post("/v1/live", json=bad).status_code == 422
    assert client.post("/v1/live", json={"prompt": "a"}).status_code == 404  # no --live: no route


def test_a_live_request_overtaken_before_it_runs_is_dropped(student):
    from t2i.serve import LiveWorker, Superseded

    worker = LiveWorker(student)
    stale, newest = worker.ticket(), worker.ticket()  # the user typed again while the first waited
    with pytest.raises(Superseded):
        worker.run(stale, "She wears", 0, 5.0)
    assert worker.run(newest, "She wears eyeglasses.", 0, 5.0).png_base64
