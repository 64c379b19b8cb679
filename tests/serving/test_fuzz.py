"""Property-based fuzzing of every operation in the OpenAPI schema over real HTTP (schemathesis).

Valid and invalid requests, generated from the schema the app publishes, go to a live server
(tiny TF-IDF triager, SQLite store, an admin key so no route stops at authorisation). Whatever
is sent, the service must not answer 5xx, and every 4xx must carry the error shape of SPEC
section 8 with one of the codes in serving/errors.py; 2xx bodies must match their schema.

The operations are read from the running app, so a new route is fuzzed without editing this
file. Hypothesis runs per operation and mode inside the test (pytest subtests), not through
schemathesis' pytest plugin: its lazy-fixture loader sets `Node._nodeid`, which pytest 9.2 no
longer has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation

from serving.app import create_app
from serving.auth import KeyRing, parse_env_keys
from serving.errors import STATUS
from serving.store import open_store
from tests.serving.conftest import KEYS, LiveServer, make_settings
from triage.pipeline import Triager

AUTH = {"Authorization": "Bearer admin-key"}
EXAMPLES = 25  # per operation and generation mode: about 30 s in all on 2 busy cores


@pytest.fixture(scope="module")
def fuzz_server(tiny_triager: Triager, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # TRIAGE_MODEL_DIR lets POST /v1/admin/reload succeed (it reloads the same tiny bundle).
    settings = make_settings(tmp_path_factory.mktemp("fuzz"), None, TRIAGE_MODEL_DIR=str(tiny_bundle))
    store = open_store(settings, tiny_triager.config.deployment.timezone)
    app = create_app(settings, triager=tiny_triager, keys=KeyRing(parse_env_keys(KEYS)), store=store)
    with LiveServer(app) as live:
        yield live.url
    store.engine.dispose()


def operations(base_url: str) -> list[APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    schema.config.update(base_url=base_url)
    schema.config.output.sanitization.update(enabled=False)  # show idempotency keys in reproductions
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation the app describes wrongly is a failure too
        found.append(result.ok())
    return found


def check_error_shape(status: int, body: Any) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, body
    assert error["code"] in STATUS, f"unknown error code {error['code']!r}"
    assert STATUS[error["code"]] == status, f"{error['code']} answered with {status}, not {STATUS[error['code']]}"
    assert isinstance(error["message"], str) and error["message"], body


def check_case(case: schemathesis.Case) -> None:
    response = case.call(headers=AUTH)
    where = f"{response.status_code} for {case.as_curl_command(headers=AUTH)}\n{response.text[:500]}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        check_error_shape(response.status_code, response.json())
    else:
        case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])


def fuzz(operation: APIOperation, mode: GenerationMode) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        check_case(case)

    run()


def modes(operation: APIOperation) -> list[GenerationMode]:
    # Only a body or a query can be made invalid: any string is a valid path segment, and an
    # operation without inputs has no invalid request (Hypothesis reports it as unsatisfiable).
    if len(operation.body) or len(operation.query):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


@pytest.mark.slow
def test_every_operation_survives_fuzzing(fuzz_server: str, subtests: pytest.Subtests) -> None:
    found = operations(fuzz_server)
    assert {op.label for op in found} >= {"POST /v1/triage", "POST /v1/triage/batch", "GET /v1/tickets/{ticket_id}"}
    for operation in found:
        for mode in modes(operation):
            with subtests.test(operation=operation.label, mode=mode.value):
                fuzz(operation, mode)
