"""A schemathesis run against the live /openapi.json of the real service: no 5xx, responses as
documented, and the real data unchanged after."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from helpers import API_ROUTES, TRACEBACK, snapshot

FUZZ_PREFIX = "fuzz_"
# API.md's operations, as /openapi.json lists them; a test checks the live document has no others.
OPERATIONS = [(method.upper(), route) for route, methods in API_ROUTES.items() for method in sorted(methods)]


@schemathesis.check
def negative_data_refused(ctx, response, case):
    """schemathesis's negative_data_rejection, with 413 counted as the refusal it is: a document
    past the body limit (a 19 MB list of inputs) is refused before it is read."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


@schemathesis.check
def no_traceback(ctx, response, case):
    text = response.text if response.content else ""
    if TRACEBACK.search(text):
        raise AssertionError(f"a traceback in the body: {text[:500]}")
    return None


@pytest.fixture(scope="module")
def api_schema(service, bank_over_http, mongo_client):
    yield schemathesis.openapi.from_url(service.url + "/openapi.json", timeout=30)
    for db in mongo_client.list_database_names():
        if db.startswith(FUZZ_PREFIX):
            mongo_client.drop_database(db)


@pytest.fixture(scope="module")
def fuzz_before(service, bank_over_http, mongo_client):
    return snapshot(service, mongo_client)


def test_the_fuzz_run_covers_every_documented_operation(api_schema):
    listed = {(result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()}
    assert listed | {("GET", "/openapi.json")} == set(OPERATIONS)  # schemathesis skips its own source


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_schemathesis_no_5xx_and_documented_responses(api_schema, fuzz_before, method, path):
    """Positive and negative cases generated from the live document. The schemathesis pytest
    plugin (from_fixture) does not run under pytest 9, so each operation is one hypothesis test
    over operation.as_strategy(). Every path parameter gets FUZZ_PREFIX: the destructive routes
    (PUT/DELETE /datasets, DELETE /models) only ever reach names no real data has. Any URI a job
    body may carry is refused unless its host is the configured loopback MongoDB."""
    operation = api_schema[path][method.lower()]
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    session = requests.Session()

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case):
        if case.path_parameters:
            case.path_parameters = {k: f"{FUZZ_PREFIX}{v}" for k, v in case.path_parameters.items()}
        response = case.call(session=session, timeout=60)
        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
                negative_data_refused,
                no_traceback,
            ],
        )

    try:
        fuzz()
    finally:
        session.close()


def test_after_the_fuzz_run_the_real_data_is_unchanged(service, mongo_client, fuzz_before):
    after = snapshot(service, mongo_client)
    assert after.health == {"status": "ok", "redis": "ok", "mongo": "ok"}
    assert after.models == fuzz_before.models and after.stored == fuzz_before.stored
    assert after.bank_checksum == fuzz_before.bank_checksum and after.bank_count == 45211
    assert after.jobs == fuzz_before.jobs
    real = {db: names for db, names in after.namespaces.items() if not db.startswith(FUZZ_PREFIX)}
    assert real == fuzz_before.namespaces
