"""requestid.py: an X-Request-ID on every answer, the client's own when usable (in process; the
access log line and the job record are held over a real server in test_metrics and
test_modelserver)."""

import pytest


def test_an_answer_gets_a_fresh_id_when_the_request_has_none(client):
    first, second = client.get("/health").headers["X-Request-ID"], client.get("/health").headers["X-Request-ID"]
    assert len(first) == 32 and first != second


@pytest.mark.parametrize("path", ["/health", "/no-such-route", "/v2/health/live", "/models/x"])
def test_a_usable_id_is_echoed_on_success_and_error(client, path):
    assert client.get(path, headers={"X-Request-ID": "abc-123.trace:7"}).headers["X-Request-ID"] == "abc-123.trace:7"


@pytest.mark.parametrize("given", ["has space", "x" * 129, 'quote"d', "new\tline", ""])
def test_an_unusable_id_is_replaced(client, given):
    answered = client.get("/health", headers={"X-Request-ID": given}).headers["X-Request-ID"]
    assert answered != given and len(answered) == 32


def test_a_refused_request_has_an_id_too(base_params):
    from helpers import InProcess
    from modelservice import modelservice

    guarded = InProcess(modelservice({**base_params, "auth_token": "s3cret"}))
    answer = guarded.get("/models/", headers={"X-Request-ID": "denied-1"})
    assert answer.status_code == 401 and answer.headers["X-Request-ID"] == "denied-1"


def test_made_ids_are_32_hex_digits_and_do_not_repeat():
    import re

    from web.requestid import new_id

    ids = [new_id() for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
