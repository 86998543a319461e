"""Comparing models on the same rows, in process (no worker: the queue is ``unconsumed``):
POST /models/compare and the compare page's button check the models and queue a comparison job
for the newest one's held-out rows; the page shows a finished comparison's figures, the better
marked. The worker's side (Spark scoring every model) is tests/test_flow_compare.py."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest

from helpers import stored_model
from predictionservice.jobstore import COMPLETED, JobStore
from predictionservice.redisclient import connect
from test_pages import STORED, form_token

pytestmark = pytest.mark.app


@pytest.fixture()
def models(unconsumed, mongo_client):
    """Three stored models on one input (which holds documents): two binary, the second newer,
    and a regression."""
    db = f"cmp_{uuid.uuid4().hex[:8]}"
    mongo_client[db]["rows"].insert_many([{"x1": 1.0, "c": "a", "y": "no"}, {"x1": 2.0, "c": "a", "y": "yes"}])
    parameters = {"inputCollection": f"{db}.rows", "seed": 7, "holdoutFraction": 0.25}
    made = [
        stored_model(unconsumed, "cmp-old", {**STORED, "parameters": parameters, "created_at": "2026-01-01T00:00:00Z"}),
        stored_model(unconsumed, "cmp-new", {**STORED, "parameters": parameters, "created_at": "2026-02-01T00:00:00Z"}),
        stored_model(unconsumed, "cmp-reg", {**STORED, "task": "regression", "parameters": parameters}),
    ]
    yield [next(m) for m in made]
    for m in made:
        next(m, None)
    mongo_client.drop_database(db)


def queued_document(unconsumed) -> dict:
    services = unconsumed.app.extensions["prediction_service"]
    (queued,) = services.redis.lrange(services.queue_key, 0, -1)
    return json.loads(base64.b64decode(json.loads(queued)["body"]))[0][0]["document"]


def test_a_comparison_is_queued_for_the_newest_models_held_out_rows(unconsumed, models):
    old, new, _ = models
    answer = unconsumed.post("/models/compare", json={"models": [old, new]})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["Location"] == f"/jobs/{job_id}"
    document = queued_document(unconsumed)
    assert document["models"] == [old, new] and document["heldout_of"] == new
    view = unconsumed.get(f"/jobs/{job_id}").json()
    assert (view["kind"], view["status"]) == ("comparison", "PENDING")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"models": "a,b"}, 400, 'a comparison is {"models": ['),
        ({"models": ["{old}"]}, 400, "name from 2 to 6 different models, not 1"),
        ({"models": ["{old}", "{old}"]}, 400, "name from 2 to 6 different models, not 1"),
        ({"models": ["{old}", "no-such-model"]}, 404, "no-such-model"),
        ({"models": ["{old}", "{reg}"]}, 400, "models of one task compare on its metrics; these differ"),
    ],
)
def test_a_wrong_comparison_is_refused_naming_why(unconsumed, models, body, status, says):
    old, _, reg = models
    if isinstance(body["models"], list):
        body = {"models": [ref.format(old=old, reg=reg) for ref in body["models"]]}
    answer = unconsumed.post("/models/compare", json=body)
    assert answer.status_code == status and says in answer.json()["error"]["message"], answer.text
    services = unconsumed.app.extensions["prediction_service"]
    assert services.redis.llen(services.queue_key) == 0  # nothing queued


def test_the_compare_page_queues_it_and_shows_the_figures_when_done(unconsumed, models):
    old, new, _ = models
    path = f"/ui/compare?model={old}&model={new}"
    page = unconsumed.get(path).text
    assert '<form id="score-form"' in page
    data = {"model": [old, new], "csrf_token": form_token(page)}
    sent = unconsumed.post("/ui/compare", data=data)
    assert sent.status_code == 303, sent.text
    job_id = re.search(r"job=([0-9a-f]{32})", sent.headers["Location"]).group(1)
    waiting = unconsumed.get(sent.headers["Location"]).text
    assert 'data-status="PENDING"' in waiting and 'id="score-form"' not in waiting

    figures = {"heldout_rows": 40, "rows": 38, "heldout_of": new, "models": [
        {"model_key": new, "metrics": {"auc": 0.91, "log_loss": 0.30}, "unscorable_rows": 0, "unscorable_reasons": {}},
        {"model_key": old, "metrics": {"auc": 0.87, "log_loss": 0.25}, "unscorable_rows": 2,
         "unscorable_reasons": {"field 'c': 'z' is not a known category": 2}},
    ]}  # fmt: skip
    jobs = JobStore(connect(unconsumed.params["redis_url"]), 600, unconsumed.params["redis_key_prefix"])
    jobs.update(job_id, COMPLETED, "compared", comparison=figures)
    done = unconsumed.get(sent.headers["Location"]).text
    auc = re.search(r'<table id="scored".*?data-metric="auc">(.*?)</tr>', done, re.S).group(1)
    assert re.findall(r'<td class="number( better)?">([^<]*)</td>', auc) == [("", "0.87"), (" better", "0.91")]
    loss = re.search(r'<table id="scored".*?data-metric="log_loss">(.*?)</tr>', done, re.S).group(1)
    assert re.findall(r'<td class="number( better)?">', loss) == [" better", ""]  # lower is better
    said = re.sub(r"\s+", " ", re.search(r'<p id="scored-rows">(.*?)</p>', done, re.S).group(1))
    assert "the same 38 rows" in said and "cannot score 2 of them (field &#39;c&#39;" in said
    assert unconsumed.get(f"/ui/compare?model={old}&model={new}&job={uuid.uuid4().hex}").status_code == 404
