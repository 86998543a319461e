"""The training page in process, as a form: never an id as a label, every feature's choices
(used or left out, a number or categories, unseen values refused or ignored) turned into the
schema the job is queued with, algorithms by name with a line of help, a description and tags.
The app's queue has no worker (``unconsumed``): a queued job is read back from the broker."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest

from test_pages import form_token

ROWS = [
    {"customer_id": f"c{i}", "userId": i, "note": f"n{i}", "grade": [1, 2, 10][i % 3], "city": ["Lyon", "Nice"][i % 2],
     "x": i / 3, "spend": float(i * 7 % 11), "y": ["no", "yes"][i % 3 == 0]}
    for i in range(60)
]  # fmt: skip


@pytest.fixture()
def dataset(mongo_client):
    db = f"ui_train_{uuid.uuid4().hex[:8]}"
    mongo_client[db]["rows"].insert_many([dict(r) for r in ROWS])
    yield f"{db}.rows"
    mongo_client.drop_database(db)


def field_row(html: str, key: str) -> str:
    found = re.search(rf'<tr data-field="{key}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, f"no row for {key}"
    return found.group(1)


def test_ids_are_never_offered_as_labels(unconsumed, dataset):
    html = unconsumed.get("/ui/train", params={"dataset": dataset}).text
    labels = re.findall(r'<option value="([^"]+)"', re.search(r'<select id="label".*?</select>', html, re.S).group(0))
    assert labels == ["city", "grade", "spend", "x", "y"]  # not _id, customer_id, userId, nor note (text, all distinct)


def test_the_features_table_offers_each_choice(unconsumed, dataset):
    html = unconsumed.get("/ui/train", params={"dataset": dataset, "label": "y"}).text
    grade = field_row(html, "grade")
    assert 'name="include" value="grade" checked' in grade
    assert re.search(r'<option value="numeric" selected>a number</option>', grade)  # a number, switchable
    city = field_row(html, "city")
    assert "categories <small>(2)</small>" in city and 'name="unknown:city"' in city
    assert "id-like: a different text in every document" in field_row(html, "note")
    assert 'name="include"' not in field_row(html, "note")  # dropped by the inference: shown, not offered
    for title, help_line in (("Logistic regression", "regularization: larger values shrink the weights"),
                             ("Random forest", "trees in the forest")):  # fmt: skip
        assert title in html and help_line in html
    assert "Linear regression" not in html  # y is classes


def choose(unconsumed, dataset: str, **extra: str):
    """The form posted as a person leaves it: spend and userId not ticked, grade as categories,
    unknown cities ignored."""
    path = f"/ui/train?dataset={dataset}&label=y"
    fields = ["grade", "city", "x", "spend", "customer_id", "userId"]
    included = [f for f in fields if f not in ("spend", "userId")]
    data = {"dataset": dataset, "label": "y", "task": "", "csrf_token": form_token(unconsumed.get(path).text),
            "offered": fields, "include": included, "kind:grade": "categorical", "unknown:city": "ignore",
            "algorithm": "RandomForestWrapper", **extra}  # fmt: skip
    return unconsumed.post("/ui/train", data=data)


def test_update_shows_the_schema_the_choices_make(unconsumed, dataset):
    page = choose(unconsumed, dataset, action="update")
    assert page.status_code == 200, page.text
    assert "left out as asked" in field_row(page.text, "spend") and 'class="muted"' in page.text
    grade = field_row(page.text, "grade")
    assert '<option value="categorical" selected>' in grade and "<small>(3)</small>" in grade
    assert '<option value="ignore" selected>' in field_row(page.text, "city")


def test_train_queues_the_job_with_the_chosen_schema_a_description_and_tags(unconsumed, dataset):
    answer = choose(unconsumed, dataset, action="train", description="who says yes", tags="pages, form ,",
                    **{"RandomForestWrapper.numTrees": "5, 10"})  # fmt: skip
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/ui/jobs/"), answer.text
    services = unconsumed.app.extensions["prediction_service"]
    (queued,) = services.redis.lrange(services.queue_key, 0, -1)
    body = base64.b64decode(json.loads(queued)["body"]).decode()
    job = json.loads(body)[0][0]["document"]  # Celery's args: the job, as the worker loads it
    features = {f["key"]: f for f in job["schema"]["features"]}
    assert set(features) == {"grade", "city", "x"}  # spend and userId left out; customer_id is no feature
    assert features["grade"]["values"] == {"1": 0, "2": 1, "10": 2} and features["city"]["unknown"] == "ignore"
    assert (job["description"], job["tags"], job["numTrees"]) == ("who says yes", ["pages", "form"], [5, 10])
    assert "dropped" not in job["schema"]


def test_a_wrong_choice_keeps_the_form_with_the_message(unconsumed, dataset):
    page = choose(unconsumed, dataset, action="train", **{"kind:x": "categorical"})
    assert page.status_code == 400
    assert "asked to be categorical, but holds" in field_row(page.text, "x")  # x is fractional: dropped, said why
    assert "set it back to a number, or untick it" in page.text
