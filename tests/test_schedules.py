"""predictionservice/schedules.py with scheduler.py's redbeat backend, and the routes PUT, GET and
DELETE /registry/<name>/schedule, through Flask's test client on the session's real Redis: the
redbeat entry made and removed with the schedule, its next run, and bad input (a cron that does
not parse, an interval under schedule_min_seconds, unknown fields, an unknown name) refused with
a 400 or 404 naming the problem while nothing stored changes. The scheduler's firing is
tests/test_flow_schedules.py's."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis

from helpers import ONE_FEATURE_MODEL
from scheduler import ENTRY, parse

pytestmark = pytest.mark.app

MODEL = {**ONE_FEATURE_MODEL, "task": "binary", "metrics": {"auc": 0.7}}


@pytest.fixture()
def named(client):
    services = client.app.extensions["prediction_service"]
    name = f"sched-{uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    services.registry.add_version(name, key, MODEL)
    beat = services.celery.conf
    entry_key = beat.redbeat_key_prefix + ENTRY + name
    yield name, services, entry_key, beat.redbeat_key_prefix + ":schedule"
    if name in services.registry.names():
        client.request("DELETE", f"/registry/{name}")
    services.registry.store.delete(key)


def seconds(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def stored(services, entry_key, zset) -> tuple:
    """What a refused change must leave as it was: the name's entry and the redbeat entry."""
    raw = redis.Redis.from_url(services.params["redis_url"])
    try:
        return raw.hgetall(entry_key), raw.zscore(zset, entry_key), services.registry.entry(name_of(entry_key))
    finally:
        raw.close()


def name_of(entry_key: str) -> str:
    return entry_key.rsplit(ENTRY, 1)[1]


def test_an_interval_schedule_is_stored_shown_and_deleted(client, named):
    name, services, entry_key, zset = named
    before = time.time()
    reply = client.request("PUT", f"/registry/{name}/schedule", json={"every_seconds": 3600})
    assert reply.status_code == 200, reply.text
    shown = reply.json()
    assert shown["every_seconds"] == 3600 and shown["last_run_at"] is None
    assert before + 3590 < seconds(shown["next_run_at"]) < time.time() + 3610  # a period from now, not at once
    assert client.get(f"/registry/{name}/schedule").json() == shown
    assert client.get(f"/registry/{name}").json()["schedule"] == shown
    entry, score, _ = stored(services, entry_key, zset)
    assert entry and score == pytest.approx(seconds(shown["next_run_at"]), abs=1)
    assert client.request("DELETE", f"/registry/{name}/schedule").status_code == 204
    assert client.get(f"/registry/{name}/schedule").status_code == 404
    assert client.get(f"/registry/{name}").json()["schedule"] is None
    entry, score, _ = stored(services, entry_key, zset)
    assert not entry and score is None
    assert client.request("DELETE", f"/registry/{name}/schedule").status_code == 404


def test_a_cron_schedule_runs_next_at_its_time_and_replaces_the_interval(client, named):
    name, _services, _entry_key, _zset = named
    client.request("PUT", f"/registry/{name}/schedule", json={"every_seconds": 60})
    reply = client.request("PUT", f"/registry/{name}/schedule", json={"cron": "0  3 * * *"})
    assert reply.status_code == 200, reply.text
    shown = reply.json()
    assert shown["cron"] == "0 3 * * *" and "every_seconds" not in shown
    upcoming = datetime.fromtimestamp(seconds(shown["next_run_at"]), UTC)
    assert (upcoming.hour, upcoming.minute) == (3, 0) and 0 < upcoming.timestamp() - time.time() <= 86400


def test_removing_the_name_removes_its_schedule(client, named):
    name, services, entry_key, zset = named
    client.request("PUT", f"/registry/{name}/schedule", json={"every_seconds": 60})
    assert client.request("DELETE", f"/registry/{name}").status_code == 204
    raw = redis.Redis.from_url(services.params["redis_url"])
    assert not raw.exists(entry_key) and raw.zscore(zset, entry_key) is None
    raw.close()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"cron": "61 3 * * *"}, "field 1 (minute) '61'"),
        ({"cron": "0 3 * * 8"}, "field 5 (day of week)"),
        ({"cron": "0 3 31 2 *"}, "never occurs"),
        ({"cron": "0 3 * *"}, "five fields"),
        ({"cron": 5}, "five fields"),
        ({"every_seconds": 0}, "schedule_min_seconds"),
        ({"every_seconds": 1.5}, "whole number"),
        ({"every_seconds": True}, "whole number"),
        ({"every": 60}, "unknown field(s) 'every'"),
        ({"every_seconds": 60, "cron": "0 3 * * *"}, "exactly one"),
        ({}, "one of"),
        ([60], "one of"),
    ],
)
def test_a_bad_schedule_is_400_naming_the_problem_and_nothing_changes(client, named, body, words):
    name, services, entry_key, zset = named
    client.request("PUT", f"/registry/{name}/schedule", json={"every_seconds": 60})
    before = stored(services, entry_key, zset)
    reply = client.request("PUT", f"/registry/{name}/schedule", json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request" and words in error["message"] + str(error["details"]), error
    assert stored(services, entry_key, zset) == before


def test_an_unknown_name_is_404_naming_those_there_are(client, named):
    name, _, _, _ = named
    for method, body in (("PUT", {"every_seconds": 60}), ("GET", None), ("DELETE", None)):
        reply = client.request(method, "/registry/no-such-name/schedule", json=body)
        assert reply.status_code == 404, (method, reply.text)
        assert name in reply.json()["error"]["details"][0]["names"]
    assert client.get(f"/registry/{name}/schedule").status_code == 404  # a name without a schedule


def test_parse_names_what_it_makes():
    assert parse({"every_seconds": 90}).run_every.total_seconds() == 90
    assert str(parse({"cron": "*/15 * * * 1-5"})).startswith("<crontab: */15 * * * 1-5")


def test_health_reports_the_scheduler_absent_when_none_runs(client):
    report = client.get("/health").json()
    assert report["scheduler"]["status"] == "absent" and isinstance(report["scheduler"]["schedules"], int)
