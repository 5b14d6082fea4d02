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
