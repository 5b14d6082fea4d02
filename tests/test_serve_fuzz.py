"""Fuzz the API from its own OpenAPI schema (schemathesis): valid and invalid requests, never a 5xx."""

import schemathesis
from hypothesis import HealthCheck, given, settings

from t2i.pipeline import Text2ImagePipeline
from t2i.serve import ServeLimits, create_app

CASES_PER_OPERATION_AND_MODE = 60  # valid requests to 4 operations, invalid ones to POST: about 300


def test_no_server_errors(tiny_model):
    app = create_app(Text2ImagePipeline.from_pretrained(tiny_model), ServeLimits(max_steps=3, max_images=2))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    calls = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in schemathesis.GenerationMode:
            if mode is schemathesis.GenerationMode.NEGATIVE and not operation.body:
                continue  # nothing invalid to send to an endpoint without parameters

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=CASES_PER_OPERATION_AND_MODE,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def no_5xx(case):
                response = case.call()
                calls.append((case.operation.label, response.status_code))
                assert response.status_code < 500, (case.body, response.text)

            no_5xx()
    assert {label for label, _ in calls} >= {"POST /v1/generate", "GET /v1/model", "GET /healthz"}
    generate = [code for label, code in calls if label == "POST /v1/generate"]
    assert 200 in generate and 422 in generate  # both valid and invalid bodies were sent
