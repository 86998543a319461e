"""Partial batches and unseen categories (docs/API.md): /predict/ through the app in process
(Flask's test client) on the session's real Redis, with models stored as training stores them.
Bad records are reported in their place (on_error "report") or refused together, every problem
of every bad record named; a feature whose schema says "unknown": "ignore" scores an unseen
category as none of them (all zeros) and says so. The expected numbers are computed here by
hand, from the stored weights, not by the service's encoder."""

from __future__ import annotations

import math
import uuid

import pytest
import redis

from predictionservice.defaults import MAX_RECORD_ERRORS
from predictionservice.modelstore import ModelStore

CITIES = {"Paris": 0, "Lyon": 1, "Lille": 2}
WEIGHTS, INTERCEPT = [0.5, -1.25, 0.75, 2.0], -0.125  # x, then city's one-hot block


def model(unknown: str | None) -> dict:
    city = {"key": "city", "values": CITIES, **({"unknown": unknown} if unknown else {})}
    return {
        "name": "LogisticRegressionWrapper",
        "schema": {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "x"}, city]},
        "coefficients": WEIGHTS,
        "intercept": INTERCEPT,
    }


def by_hand(x: float, city: str | None) -> float:
    """The positive class's probability: an unknown city (None) adds no weight at all."""
    margin = INTERCEPT + WEIGHTS[0] * x + (WEIGHTS[1 + CITIES[city]] if city is not None else 0.0)
    return 1 / (1 + math.exp(-margin))


@pytest.fixture(scope="module")
def keys(base_params):
    client = redis.Redis.from_url(base_params["redis_url"].rsplit("/", 1)[0] + f"/{base_params['models_db']}")
    store = ModelStore(client)
    stored = {kind: f"partial-{kind or 'error'}-{uuid.uuid4().hex[:8]}" for kind in (None, "ignore")}
    for kind, key in stored.items():
        store.save(key, model(kind))
    yield stored
    for key in stored.values():
        store.delete(key)
    client.close()


GOOD = [{"x": 0.5 * i - 2, "city": list(CITIES)[i % 3]} for i in range(10)]
BAD = {2: {"x": "lots", "city": "Paris"}, 5: {"city": "Lyon"}, 8: {"x": 1.0, "city": "Pariss"}}
BAD_FIELDS = {2: "x", 5: "x", 8: "city"}


def batch() -> list[dict]:
    return [BAD.get(i, record) for i, record in enumerate(GOOD)]


def test_a_report_answers_the_good_records_and_each_bad_ones_error_in_order(client, keys):
    reply = client.post("/predict/", json={"modelkey": keys[None], "records": batch(), "on_error": "report"})
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    assert len(predictions) == 10
    assert [i for i, p in enumerate(predictions) if "error" in p] == sorted(BAD)
    for i, answer in enumerate(predictions):
        if i in BAD:
            error = answer["error"]
            assert error["code"] == "invalid_record" and error["field"] == BAD_FIELDS[i]
            assert [d["field"] for d in error["details"]] == [BAD_FIELDS[i]]
            assert BAD_FIELDS[i] in error["message"]
        else:
            assert answer["probability"] == pytest.approx(by_hand(GOOD[i]["x"], GOOD[i]["city"]), abs=1e-12)
            assert "warnings" not in answer


def test_by_default_the_batch_is_refused_naming_every_bad_record(client, keys):
    for body in ({}, {"on_error": "fail"}):
        reply = client.post("/predict/", json={"modelkey": keys[None], "records": batch(), **body})
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["code"] == "invalid_record"
        assert [(d["index"], d["field"]) for d in error["details"]] == sorted(BAD_FIELDS.items())
        for index in BAD:
            assert f"record {index}: " in error["message"]


def test_a_record_with_several_problems_names_them_all(client, keys):
    record = {"x": None, "city": "Nowhere"}
    single = client.post("/predict/", json={"modelkey": keys[None], "record": record})
    assert single.status_code == 400
    assert [d["field"] for d in single.json()["error"]["details"]] == ["x", "city"]
    body = {"modelkey": keys[None], "records": [GOOD[0], record, "not a record"], "on_error": "report"}
    reply = client.post("/predict/", json=body)
    assert reply.status_code == 400  # "not a record" is refused by the request's own schema
    body["records"] = [GOOD[0], record, {}]
    predictions = client.post("/predict/", json=body).json()["predictions"]
    assert "probability" in predictions[0]
    assert [d["field"] for d in predictions[1]["error"]["details"]] == ["x", "city"]
    assert "'Nowhere'" in predictions[1]["error"]["message"] and "null" in predictions[1]["error"]["message"]
    assert [d["field"] for d in predictions[2]["error"]["details"]] == ["x", "city"]  # both missing


def test_the_refusal_names_at_most_the_cap(client, keys):
    records = [{"x": "bad", "city": "Nowhere"}] * (MAX_RECORD_ERRORS // 2 + 1)
    reply = client.post("/predict/", json={"modelkey": keys[None], "records": records})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert len(error["details"]) == MAX_RECORD_ERRORS
    assert f"{2 * len(records)} problems in all" in error["message"]


def test_a_bad_on_error_is_400_naming_the_allowed_values(client, keys):
    reply = client.post("/predict/", json={"modelkey": keys[None], "records": GOOD, "on_error": "skip"})
    assert reply.status_code == 400
    message = reply.json()["error"]["message"]
    assert "on_error" in message and "'fail'" in message and "'report'" in message


def test_an_unseen_category_is_ignored_with_a_warning_only_where_the_schema_says_so(client, keys):
    record = {"x": 1.5, "city": "Nice"}
    refused = client.post("/predict/", json={"modelkey": keys[None], "record": record})
    assert refused.status_code == 400 and refused.json()["error"]["details"][0]["field"] == "city"
    reply = client.post("/predict/", json={"modelkey": keys["ignore"], "record": record})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["warnings"] == ["field 'city': 'Nice' is not a known category; treated as none of them"]
    assert answer["probability"] == pytest.approx(by_hand(1.5, None), abs=1e-12)
    records = [GOOD[1], record, {"x": -0.5, "city": 7}]
    predictions = client.post("/predict/", json={"modelkey": keys["ignore"], "records": records}).json()["predictions"]
    assert "warnings" not in predictions[0]
    assert predictions[0]["probability"] == pytest.approx(by_hand(GOOD[1]["x"], GOOD[1]["city"]), abs=1e-12)
    assert predictions[1]["warnings"] == answer["warnings"] and predictions[1]["probability"] == answer["probability"]
    assert predictions[2]["warnings"] == ["field 'city': '7' is not a known category; treated as none of them"]
    assert predictions[2]["probability"] == pytest.approx(by_hand(-0.5, None), abs=1e-12)
    missing = client.post("/predict/", json={"modelkey": keys["ignore"], "record": {"x": 1.0, "city": None}})
    assert missing.status_code == 400  # a null is no category: ignore does not cover it


def test_the_model_shows_the_schema_it_was_stored_with(client, keys):
    reply = client.get(f"/models/{keys['ignore']}")
    assert reply.status_code == 200
    assert reply.json()["schema"]["features"][1]["unknown"] == "ignore"
