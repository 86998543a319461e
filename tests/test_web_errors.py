"""web/errors.py: one error envelope, whoever raised the error. On a stand-in app with the app's
handlers, each view raises one kind for real (a Redis or MongoDB that does not answer is a closed
port): the status, the code, the headers a client needs, and the V2 routes' own shape."""

from __future__ import annotations

import logging

import pymongo
import pytest
import redis
from flask import Flask, abort, request
from redis.backoff import NoBackoff
from redis.retry import Retry

from localservers import embedded
from predictionservice.exceptions import TooManyRequests, Unauthorized
from web.errors import register_errors

CLOSED = embedded.free_port()  # nothing listens there


def _redis():
    redis.Redis(port=CLOSED, retry=Retry(NoBackoff(), 0)).ping()  # no retries: it fails at once


def _mongo():
    pymongo.MongoClient(port=CLOSED, serverSelectionTimeoutMS=100).admin.command("ping")


def _bug():
    return {}["missing"]


def _timeout():
    raise TimeoutError("timed out")


def _full():
    raise TooManyRequests("full", retry_after=7)


def _unauthorized():
    raise Unauthorized("who are you")


VIEWS = {"redis": _redis, "mongo": _mongo, "bug": _bug, "timeout": _timeout, "full": _full, "token": _unauthorized}


@pytest.fixture(scope="module")
def app():
    app = Flask("stand-in", static_folder=None)
    register_errors(app)
    for name, view in VIEWS.items():
        app.add_url_rule(f"/{name}", name, view)
        app.add_url_rule(f"/v2/{name}", f"v2_{name}", view)
    app.add_url_rule("/length", "length", lambda: abort(411))
    app.add_url_rule("/post-only", "post_only", lambda: request.method, methods=["POST"])
    return app.test_client()


@pytest.mark.parametrize(
    ("path", "status", "code", "words"),
    [
        ("/redis", 503, "service_unavailable", "Redis is unavailable"),
        ("/mongo", 503, "service_unavailable", "MongoDB is unavailable"),
        ("/bug", 500, "internal_error", "the server log has the details"),
        ("/timeout", 408, "request_timeout", "request_body_min_rate"),
        ("/full", 429, "too_many_requests", "full"),
        ("/token", 401, "unauthorized", "who are you"),
        ("/length", 411, "invalid_request", ""),  # a 4xx of no code of its own
        ("/nowhere", 404, "not_found", "see /openapi.json"),
        ("/post-only", 405, "method_not_allowed", "allowed: OPTIONS, POST"),
    ],
)
def test_every_error_is_the_envelope_with_its_status_and_code(app, path, status, code, words):
    answer = app.get(path)
    assert answer.status_code == status, answer.text
    error = answer.get_json()["error"]
    assert error["code"] == code and words in error["message"] and error["details"] == []


def test_the_headers_a_client_acts_on(app):
    assert app.get("/full").headers["Retry-After"] == "7"
    assert app.get("/token").headers["WWW-Authenticate"].startswith("Bearer ")
    assert app.get("/timeout").headers["Connection"] == "close"
    assert app.get("/post-only").headers["Allow"] == "OPTIONS, POST"


def test_the_v2_routes_answer_the_protocols_shape(app):
    answer = app.get("/v2/redis")
    assert answer.status_code == 503
    assert answer.get_json() == {"error": "Redis is unavailable; try again later"}


def test_a_bug_is_logged_with_its_trace_under_the_incident_id_the_client_gets(app, caplog):
    with caplog.at_level(logging.ERROR, logger="prediction_service"):
        message = app.get("/bug").get_json()["error"]["message"]
    incident = message.split("incident ")[1].split(")")[0]
    assert "Traceback" not in message and "KeyError" not in message
    (record,) = [r for r in caplog.records if incident in r.getMessage()]
    assert record.exc_info and record.exc_info[0] is KeyError
