"""Hostile HTTP clients: huge bodies, bodies without a key, NaN and lone surrogates, odd headers, the
schema and docs offline (in-process); abandoned requests and slow clients (a real server process)."""

import base64
import io
import json
import socket
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from t2i.pipeline import Text2ImagePipeline
from t2i.serve import ServeLimits, create_app


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return Text2ImagePipeline.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def keyed(pipe):
    return TestClient(create_app(pipe, ServeLimits(max_steps=5, max_prompt_chars=50), api_key="clé-s3cret"))


def test_the_key_is_checked_before_the_body_and_bodies_are_bounded(keyed):
    huge = b'{"prompt": "' + b"x" * 200_000 + b'"}'
    response = keyed.post("/v1/generate", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 401  # no key: refused before the body is read
    key = {"Authorization": "Bearer clé-s3cret".encode(), "Content-Type": "application/json"}
    response = keyed.post("/v1/generate", content=huge, headers=key)
    assert response.status_code == 413 and "65536" in response.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"x" * 1000

    assert keyed.post("/v1/generate", content=chunks(), headers=key).status_code == 413
    response = keyed.post("/v1/generate", content=json.dumps({"prompt": "y" * 60_000}), headers=key)
    assert response.status_code == 422 and len(response.content) < 1000  # the input is never echoed


def test_non_ascii_keys_and_headers(keyed):
    assert keyed.get("/v1/model", headers={"Authorization": "Bearer clé-s3cret".encode()}).status_code == 200
    assert keyed.get("/v1/model", headers={"Authorization": "bearer clé-s3cret".encode()}).status_code == 200
    for header in ("Bearer clé-s3creT".encode(), "Bearer ключ".encode(), b"Bearer \xff\xfe", "clé-s3cret".encode()):
        assert keyed.get("/v1/model", headers={"Authorization": header}).status_code == 401


@pytest.mark.parametrize("field", ["prompt", "negative_prompt", "steps", "guidance", "seed", "n", "scheduler"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", '"\\ud800"'])
def test_non_finite_numbers_and_lone_surrogates_are_422_not_500(pipe, field, value):
    client = TestClient(create_app(pipe, ServeLimits(max_steps=2)))
    body = '{"prompt": "a hat", "steps": 1, "' + field + '": ' + value + "}"  # the last duplicate key wins
    response = client.post("/v1/generate", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert [field] == [d["loc"][-1] for d in response.json()["detail"]]


def _file(image: Image.Image, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


NOISE = _file(Image.effect_noise((40, 40), 64).convert("RGB"))  # about 5 kB: over a 1,000-byte limit
UPLOADS = {
    "not base64": ("a face!", "not base64"),
    "text file": (base64.b64encode(b"hello, I am a text file").decode(), "not an image file"),
    "truncated PNG": (base64.b64encode(NOISE[:900]).decode(), "damaged"),
    "TIFF": (base64.b64encode(_file(Image.new("RGB", (8, 8)), "TIFF")).decode(), "not an image file"),
    "too many pixels": (base64.b64encode(_file(Image.new("1", (500, 500)))).decode(), "500×500 pixels: over"),
    "data URL not base64": ("data:image/png,abc", "must be base64"),
    "over the byte limit": (base64.b64encode(NOISE).decode(), "over 1000 bytes"),
    "empty": ("", "not an image file"),
}


@pytest.mark.parametrize("field", ["image", "mask"])
@pytest.mark.parametrize("upload", UPLOADS)
def test_bad_uploads_are_422_naming_the_field(pipe, field, upload):
    client = TestClient(create_app(pipe, ServeLimits(max_steps=2, max_upload_bytes=1000, max_upload_pixels=64 * 64)))
    text, message = UPLOADS[upload]
    good = base64.b64encode(_file(Image.new("RGB", (40, 40)))).decode()  # the truncated PNG's size
    body = {"prompt": "a hat", "steps": 1, "image": good} | {field: text}
    response = client.post("/v1/edit", json=body)
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"][-1] == field and message in detail["msg"] and len(response.content) < 1000


def test_edit_bodies_are_bounded_by_two_uploads(pipe):
    limits = ServeLimits(max_upload_bytes=1000)
    client = TestClient(create_app(pipe, limits))
    assert limits.body_limit("/v1/edit") == limits.max_body_bytes + 2 * (1336 + 100)
    body = json.dumps({"prompt": "a hat", "image": "A" * (limits.body_limit("/v1/edit") + 1)})
    response = client.post("/v1/edit", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    body = json.dumps({"prompt": "a hat", "image": "A" * 2000})  # within the body limit, over the field's
    response = client.post("/v1/edit", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "over 1000 bytes" in response.json()["detail"][0]["msg"]


def test_schema_declares_auth_only_with_a_key_and_every_error(pipe, keyed):
    open_schema = TestClient(create_app(pipe)).get("/openapi.json").json()
    assert "securitySchemes" not in open_schema.get("components", {})
    assert "security" not in open_schema["paths"]["/v1/generate"]["post"]
    assert {"408", "413", "422", "429", "503"} <= set(open_schema["paths"]["/v1/generate"]["post"]["responses"])
    keyed_schema = keyed.get("/openapi.json").json()
    assert keyed_schema["paths"]["/v1/generate"]["post"]["security"]
    assert "401" in keyed_schema["paths"]["/v1/model"]["get"]["responses"]


def test_docs_page_loads_its_assets_from_the_server(keyed):
    page = keyed.get("/docs").text
    assert "cdn" not in page.lower() and "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-offline-docs/{asset}" in page
        assert keyed.get(f"/static-offline-docs/{asset}").status_code == 200


@pytest.fixture(scope="module")
def server(tiny_model, start_server):
    flags = ["--max-steps", "1000", "--max-images", "32", "--max-queue", "2", "--read-timeout", "1"]
    url, port, _ = start_server(tiny_model, *flags)
    return url, port


def _raw_request(port: int, body: bytes, send_all: bool = True) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port))
    head = f"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    connection.sendall(head.encode() + b"\r\n\r\n" + (body if send_all else body[:5]))
    return connection


def test_abandoned_requests_free_the_worker(server):
    url, port = server
    long = json.dumps({"prompt": "a hat", "steps": 1000, "n": 32}).encode()  # a minute or more of work each
    abandoned = [_raw_request(port, long) for _ in range(3)]  # one runs, two wait: the queue (2) is full
    time.sleep(0.5)
    for connection in abandoned:
        connection.close()
    for _ in range(300):  # dropped at the next step; without that the worker stays busy for minutes
        if not httpx.get(f"{url}/v1/progress").json()["running"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the abandoned requests still hold the worker after 30 s")
    response = httpx.post(f"{url}/v1/generate", json={"prompt": "a hat", "steps": 5}, timeout=120)
    assert response.status_code == 200  # not 429
    assert base64.b64decode(response.json()["images"][0]["png_base64"]).startswith(b"\x89PNG")


def test_slow_heads_and_bodies_are_closed(server):
    url, port = server
    slow_bodies = [_raw_request(port, b'{"prompt": "a hat"}', send_all=False) for _ in range(20)]
    slow_heads = []
    for _ in range(20):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\n")
        slow_heads.append(connection)
    deadline = time.monotonic() + 10
    for connection in slow_bodies + slow_heads:
        connection.settimeout(max(0.1, deadline - time.monotonic()))
        answer = b""
        while chunk := connection.recv(4096):  # the server answers 408 and closes, or just closes
            answer += chunk
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
        connection.close()
    assert httpx.get(f"{url}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((8, 2_097_152), "one side over 4× the other"),
        ((1, 16_777_216), "one side over 4× the other"),
        ((20_000, 20_000), "decompression bomb"),
        ((5000, 5000), "over the limit of 16777216 pixels"),
    ],
)
def test_bombs_are_refused_from_their_header(pipe, png_header, size, message):
    client = TestClient(create_app(pipe, ServeLimits(max_steps=2)))
    body = {"prompt": "a hat", "steps": 1, "image": base64.b64encode(png_header(*size)).decode()}
    response = client.post("/v1/edit", json=body)
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"][-1] == "image" and message in detail["msg"]


def test_uploads_are_decoded_only_when_their_request_runs(pipe, monkeypatch):
    import threading

    from t2i import serve

    decoded = []

    def decode(upload):
        decoded.append(threading.current_thread().name)
        return Image.new("RGB", upload.size)

    monkeypatch.setattr(serve.Upload, "decode", decode)
    image = base64.b64encode(_file(Image.new("RGB", (32, 32)))).decode()
    upload = serve.read_upload(image, ServeLimits(), "image")
    assert upload.size == (32, 32) and decoded == []  # validation reads the header only
    client = TestClient(create_app(pipe, ServeLimits(max_steps=2)))
    response = client.post("/v1/edit", json={"prompt": "a hat", "steps": 1, "image": image})
    assert response.status_code == 200 and len(decoded) == 1 and decoded[0].startswith("generate")


def test_an_empty_api_key_is_refused(pipe):
    for key in ("", "  "):
        with pytest.raises(ValueError, match="API key .* is empty"):
            create_app(pipe, api_key=key)


def test_a_body_of_many_unknown_keys_is_one_error(pipe):
    client = TestClient(create_app(pipe))
    body = json.dumps({"prompt": "a hat"} | {f"k{i}": 1 for i in range(100_000)})
    response = client.post("/v1/edit", content=body, headers={"Content-Type": "application/json"})  # 1.3 MB
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body"], "msg": "Value error, 100001 keys: a request has at most 64", "type": "value_error"}
    ]


def test_model_info_gives_each_setting_one_default_and_one_range(pipe):
    info = TestClient(create_app(pipe, ServeLimits(max_steps=7))).get("/v1/model").json()
    for setting in info["settings"]:
        assert setting["default"] == info["defaults"][setting["name"]] == setting["schema"]["default"]
        if "maximum" in setting["schema"]:
            assert setting["high"] == setting["schema"]["maximum"]
    assert {s["name"]: s["high"] for s in info["settings"]}["steps"] == 7
