"""Fuzz the API from its own OpenAPI schema: whatever a client sends, no 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from t2i.pipeline import Text2ImagePipeline
from t2i.serve import ServeLimits, create_app


@pytest.fixture(scope="module")
def api_schema(tiny_model):
    app = create_app(Text2ImagePipeline.from_pretrained(tiny_model), ServeLimits(max_steps=3, max_images=2))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate()
