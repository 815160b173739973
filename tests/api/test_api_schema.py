"""Schemathesis over the app's own OpenAPI schema, in-process: whatever a client sends
within the documented shapes (positive) or outside them (negative), no 5xx, and every
response matches the schema. Examples are bounded and derandomised so the run is
quick and repeatable.

Each operation's strategy is driven with ``@given`` directly rather than through
schemathesis' pytest plugin, whose lazy-fixture loader does not work with the pytest
this project pins.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from api.main import create_app
from tests.api.helpers import api_settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 40}
# How long one in-process call may take: a bound on a hang, not a speed target (the
# transport's own 10 s was reached by a first search on a machine busy with other work).
CALL_TIMEOUT = 120
OPERATIONS = [
    ("POST", "/v1/search"),
    ("POST", "/v1/ask"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/v1/documents"),
    ("POST", "/v1/documents"),
    ("DELETE", "/v1/documents/{doc_id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]


@pytest.fixture(scope="module")
def api_schema(built_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("schema") / "home"
    shutil.copytree(built_home, home)
    app = create_app(api_settings(home))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_route_is_covered(api_schema: Any) -> None:
    documented = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


# Rules a JSON schema cannot state, so schema-valid requests may still be refused:
# the last chat message must be the user's question; an upload's type is read from
# its file name; a question needs a word (rag/question.py: not expressible as a
# pattern that JavaScript and Python validators read alike).
SEMANTIC_RULES = {"/v1/chat/completions", "/v1/documents", "/v1/search", "/v1/ask"}
# Operations without parameters or a body have no invalid input to generate.
CASES = [
    (m, p, mode)
    for m, p in OPERATIONS
    for mode in EXAMPLES
    if mode is GenerationMode.POSITIVE or m != "GET"
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_api_conforms_to_its_schema(api_schema: Any, method: str, path: str, mode: Any) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call(timeout=CALL_TIMEOUT)
        assert response.status_code < 500, (case.method, case.path, response.text[:500])
        excluded = [positive_data_acceptance] if path in SEMANTIC_RULES else []
        case.validate_response(response, excluded_checks=excluded)

    check()
