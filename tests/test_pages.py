"""web/pages/ in process (Flask's test client on the session's Redis and MongoDB): every page
renders, the predict form answers as POST /predict/ does, bad values show the API's message by
their field, everything is escaped, forms need their CSRF token and token mode asks once."""

from __future__ import annotations

import re
import uuid
from html import unescape

import pytest

from helpers import InProcess, stored_model
from modelservice import modelservice
from predictionservice.jobstore import COMPLETED, JobStore
from predictionservice.redisclient import connect

EVIL = '<script>alert("x")</script>'
SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x1"}, {"key": "c", "values": {"a": 0, EVIL: 1}}],
}
STORED = {
    "name": "LogisticRegressionWrapper",
    "task": "binary",
    "created_at": "2026-01-01T00:00:00Z",
    "numFeatures": 3,
    "feature_names": ["x1", "c=a", f"c={EVIL}"],
    "schema": SCHEMA,
    "coefficients": [1.5, -0.5, 0.25],
    "intercept": 0.1,
    "parameters": {"inputCollection": "ui_test.none", "regParam": [0.01]},
    "metrics": {"auc": 0.9, "accuracy": 0.8},
    "training": {"rows": 10, "holdout_rows": 2, "invalid_rows": 0, "best_params": {"regParam": 0.01}},
}


@pytest.fixture(scope="module")
def model(client):
    yield from stored_model(client, "ui", STORED)


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def post_form(client, path: str, data: dict, **kw):
    """A form post as the page makes it: the CSRF token of a GET of the same page first."""
    token = form_token(client.get(path).text)
    return client.post(path, data={**data, "csrf_token": token}, **kw)


def test_root_redirects_to_the_pages(client):
    answer = client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/ui/"
    assert client.get("/ui").status_code == 308


def test_the_models_page_lists_the_model_with_its_metrics(client, model):
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert f'href="/ui/models/{model}"' in page.text and "auc 0.9" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_model_page_has_the_predict_form_chart_and_curl_all_escaped(client, model):
    page = client.get(f"/ui/models/{model}")
    assert page.status_code == 200
    html = page.text
    assert '<form id="predict-form"' in html
    assert re.search(r'<input[^>]+type="number"[^>]+name="x1"', html)
    assert re.search(r'<select[^>]+name="c"', html)
    assert EVIL not in html and "&lt;script&gt;" in html  # a category, a feature name: escaped
    assert "<svg" in html and html.count('class="bar') == 3
    assert "regParam" in html and "0.01" in html
    curl = unescape(re.search(r'<code id="curl">(.*?)</code>', html, re.S).group(1))
    assert curl.startswith("curl -s -X POST http://localhost/predict/") and f'"modelkey": "{model}"' in curl
    assert 'id="prediction"' not in html


def test_the_form_answers_as_predict_does(client, model):
    record = {"x1": "0.7", "c": EVIL}
    page = post_form(client, f"/ui/models/{model}", record)
    assert page.status_code == 200, page.text
    api = client.post("/predict/", json={"modelkey": model, "record": {"x1": 0.7, "c": EVIL}}).json()
    found = re.search(r'id="prediction"[^>]*data-label="([^"]*)" data-probability="([^"]*)"', page.text)
    assert found and (unescape(found.group(1)), float(found.group(2))) == (api["label"], api["probability"])
    assert f'value="{0.7}"' in page.text  # the posted record stays in the form


EXPLAINED = {
    **STORED,
    "schema": {
        "label": {"key": "y", "values": {"no": 0, "yes": 1}},
        "features": [{"key": "x1"}, {"key": "x2"}, {"key": "x3"}, {"key": "c", "values": {"a": 0, "b": 1}}],
    },
    "numFeatures": 5,
    "feature_names": ["x1", "x2", "x3", "c=a", "c=b"],
    "coefficients": [1.5, -2.0, 0.25, 0.75, -0.5],
    "feature_means": [0.2, 0.1, -1.0, 0.5, 0.5],
}


@pytest.fixture(scope="module")
def explained_model(client):
    """A logistic model stored with its training means: its predictions can be explained."""
    yield from stored_model(client, "ui-x", EXPLAINED)


def test_the_form_shows_the_contributions_as_a_sorted_signed_bar_chart(client, explained_model):
    record = {"x1": 0.9, "x2": 1.3, "x3": 0.0, "c": "b"}
    page = post_form(client, f"/ui/models/{explained_model}", {k: str(v) for k, v in record.items()})
    assert page.status_code == 200, page.text
    api = client.post("/predict/", json={"modelkey": explained_model, "record": record, "explain": True}).json()
    explanation = api["explanation"]
    part = re.search(r'<div id="explanation" data-base="([^"]*)" data-output="margin">(.*?)</div>', page.text, re.S)
    assert part and float(part.group(1)) == explanation["base"]
    svg = part.group(2)
    assert "<svg" in svg and "contributions to the margin" in svg
    output = explanation["base"] + sum(explanation["contributions"].values())
    assert f"base {explanation['base']:.4g} + contributions = {output:.4g}" in svg
    bars = re.findall(r'<rect class="bar( negative)?"[^>]*><title>([^<]*): ([^<]*)</title>', svg)
    expected = sorted(explanation["contributions"].items(), key=lambda item: -abs(item[1]))
    assert [name for _, name, _ in bars] == [name for name, _ in expected]  # largest magnitude first
    assert [text for _, _, text in bars] == [f"{value:.4g}" for _, value in expected]
    assert [bool(negative) for negative, _, _ in bars] == [value < 0 for _, value in expected]
    assert any(value < 0 for _, value in expected) and any(value > 0 for _, value in expected)
    assert [n for n in re.findall(r'<text class="name"[^>]*>([^<]*)</text>', svg)] == [n for n, _ in expected]


def test_a_model_stored_before_explanations_answers_the_form_saying_why_there_is_no_chart(client, model):
    page = post_form(client, f"/ui/models/{model}", {"x1": "0.7", "c": "a"})
    assert page.status_code == 200, page.text
    assert 'id="prediction"' in page.text and 'id="explanation"' not in page.text
    assert "must be retrained to be explained" in unescape(page.text)


def test_a_bad_value_shows_the_apis_message_by_its_field(client, model):
    page = post_form(client, f"/ui/models/{model}", {"x1": "abc", "c": "a"})
    assert page.status_code == 400
    api = client.post("/predict/", json={"modelkey": model, "record": {"x1": "abc", "c": "a"}}).json()
    error = re.search(r'<span class="field-error" data-field="x1">([^<]*)</span>', page.text)
    assert error and unescape(error.group(1)) == api["error"]["message"]
    assert 'id="prediction"' not in page.text


def test_an_unknown_model_is_a_404_page_with_the_apis_message(client):
    page = client.get("/ui/models/no-such-model")
    assert page.status_code == 404 and "model &#39;no-such-model&#39; not found" in page.text


def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(client, model):
    assert client.post(f"/ui/models/{model}/delete", data={}).status_code == 403
    assert client.post(f"/ui/models/{model}/delete", data={"csrf_token": "0" * 64}).status_code == 403
    token = form_token(client.get(f"/ui/models/{model}").text)
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = client.post(f"/ui/models/{model}/delete", data={"csrf_token": token}, headers=headers)
        assert refused.status_code == 403 and "another site" in refused.text
    assert client.get(f"/models/{model}").status_code == 200  # still there


def test_cookies_are_httponly_and_samesite_strict(client):
    fresh = InProcess(client.app)
    cookie = fresh.get("/ui/").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie


def test_the_jobs_page_and_a_job_page(client, model):
    jobs = JobStore(connect(client.params["redis_url"]), 600)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "predictall", {"modelkey": model, "outputCollection": "ui_test.out"})
    jobs.update(job_id, COMPLETED, "scored", rows=7)
    listing = client.get("/ui/jobs").text
    assert f'data-job="{job_id}"' in listing and 'href="/ui/datasets/ui_test/out"' in listing
    page = client.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200 and 'data-final="1"' in page.text and "(7 rows)" in page.text
    status = client.get(f"/ui/jobs/{job_id}/status").json()
    assert status == {**client.get(f"/jobs/{job_id}").json(), "status_words": "done", "message_shown": "scored"}
    assert client.get("/ui/jobs/never-issued").status_code == 404


def test_a_job_page_of_a_key_that_is_no_job_id_is_404_not_a_redis_outage(client, caplog):
    """Issue 25, 3.11: '<id>:history' named the job's history list, Redis refused HMGET on it
    (WRONGTYPE) and the page answered 503, logged as Redis unavailable; the API's /jobs/ says 404."""
    job_id = uuid.uuid4().hex
    jobs = JobStore(connect(client.params["redis_url"]), 600)
    jobs.create(job_id, "training", {"name": "x"})
    jobs.update(job_id, COMPLETED, "done")  # its history list exists
    for path in (f"/ui/jobs/{job_id}:history", f"/ui/jobs/{job_id}:history/status"):
        answer = client.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert "a job id is 32 hexadecimal digits" in answer.text
    assert "Redis unavailable" not in caplog.text


def test_datasets_train_and_a_scored_collection(client, mongo_client):
    db = mongo_client["ui_test"]
    db["rows"].delete_many({})
    db["rows"].insert_many([{"x1": float(i), "c": "ab"[i % 2], "y": "yes" if i % 3 else "no"} for i in range(30)])
    db["scored"].delete_many({})
    db["scored"].insert_many(
        [
            {"score": i % 2, "label": "yes" if i % 2 else "no", "probability": i / 30, "value": {"y": "yes"}}
            for i in range(30)
        ]
    )
    assert 'href="/ui/datasets/ui_test/rows"' in client.get("/ui/datasets").text
    scored = client.get("/ui/datasets/ui_test/scored", params={"label": "y"})
    assert scored.status_code == 200 and "<svg" in scored.text and 'id="confusion"' in scored.text
    assert "Accuracy 0.5000" in scored.text
    train = client.get("/ui/train", params={"dataset": "ui_test.rows", "label": "y"})
    assert train.status_code == 200 and 'id="inferred-schema"' in train.text
    assert 'value="LogisticRegressionWrapper"' in train.text and 'value="LinearRegressionWrapper"' not in train.text
    refused = post_form(
        client,
        "/ui/train?dataset=ui_test.rows&label=y",
        {
            "dataset": "ui_test.rows",
            "label": "y",
            "algorithm": "LogisticRegressionWrapper",
            "LogisticRegressionWrapper.regParam": "0.1, x",
            "action": "train",
        },
    )
    assert refused.status_code == 400 and "&#39;regParam&#39;: &#39;x&#39; is not a number" in refused.text
    mongo_client.drop_database("ui_test")


def test_token_mode_asks_once_and_keeps_a_session_cookie(base_params):
    app = InProcess(modelservice({**base_params, "auth_token": "page-token"}))
    asked = app.get("/ui/jobs")
    assert asked.status_code == 401 and 'id="login-form"' in asked.text
    csrf = form_token(asked.text)
    assert app.get("/jobs/").status_code == 401  # the API still wants its bearer header
    wrong = app.post("/ui/login", data={"token": "nope", "next": "/ui/jobs", "csrf_token": csrf})
    assert wrong.status_code == 401 and "not this service" in wrong.text
    right = app.post("/ui/login", data={"token": "page-token", "next": "/ui/jobs", "csrf_token": csrf})
    assert right.status_code == 303 and right.headers["Location"] == "/ui/jobs"
    assert "page-token" not in right.headers["Set-Cookie"]
    assert app.get("/ui/jobs").status_code == 200
    assert app.get("/jobs/").status_code == 401  # the cookie is for the pages only
    away = app.post("/ui/login", data={"token": "page-token", "next": "//evil.example/", "csrf_token": csrf})
    assert away.status_code == 303 and away.headers["Location"] == "/ui/"  # never off the site
    assert app.post("/ui/login", data={"token": "page-token", "csrf_token": "x"}).status_code == 403


def test_the_training_page_offers_regression_for_a_measurement_and_classes_on_request(client, mongo_db):
    mongo_db.m.insert_many([{"x1": float(i % 9), "c": "ab"[i % 2], "m": i / 7, "n": i % 3} for i in range(300)])
    dataset = f"{mongo_db.name}.m"
    page = client.get("/ui/train", params={"dataset": dataset, "label": "m"})
    assert page.status_code == 200 and 'id="inferred-schema"' in page.text, page.text
    assert 'value="LinearRegressionWrapper"' in page.text and 'value="LogisticRegressionWrapper"' not in page.text
    assert 'name="task"' in page.text
    classes = client.get("/ui/train", params={"dataset": dataset, "label": "n", "task": "classification"})
    assert classes.status_code == 200 and 'value="LogisticRegressionWrapper"' in classes.text
    assert 'value="LinearRegressionWrapper"' not in classes.text
    assert '<option value="classification" selected>' in classes.text
    refused = client.get("/ui/train", params={"dataset": dataset, "label": "m", "task": "classification"})
    assert refused.status_code == 400 and "not a whole number" in refused.text


def scored_rows(n: int) -> list[dict]:
    """A classifier's scored documents: y its label, id distinct in every row, m a measurement,
    k five categories, late two values in the first 1,000 rows and a new one in each row after."""
    return [
        {
            "score": i % 2,
            "label": "yes" if i % 2 else "no",
            "probability": (i % 10) / 10,
            "value": {"y": "yes" if i % 3 else "no", "id": i, "m": i / 3, "k": f"k{i % 5}",
                      "late": str(i % 2 if i < 1000 else i)},
        }
        for i in range(n)
    ]  # fmt: skip


def test_a_scored_page_compares_only_offered_fields_and_caps_the_classes(base_params, mongo_db):
    """GET /ui/datasets/<db>/<scored>?label=_id on 45,209 rows drew a 45,209² confusion matrix
    (542 s, killed at 22.4 GB) and label=$ or a NUL was a 500: only the fields a comparison
    makes sense for are offered, any other is a 400 page, and a matrix stops at its cap."""
    app = InProcess(modelservice({**base_params, "report_max_classes": 4}))
    mongo_db.scored.insert_many(scored_rows(3000))
    path = f"/ui/datasets/{mongo_db.name}/scored"
    page = app.get(path, params={"label": "y"})
    assert page.status_code == 200 and 'id="confusion"' in page.text, page.text
    offered = re.findall(r'<option value="([^"]*)"', re.search(r'<form method="get" id="label-form">.*?</form>',
                                                               page.text, re.S).group(0))  # fmt: skip
    assert offered == ["", "late", "y"]  # id, m (too many values) and k (5 > 4) are not offered
    assert "over 3000 documents with y" in page.text
    for hostile in ["_id", "id", "m", "k", "$", "\x00", "value.y", "$where", "y" * 5000]:
        refused = app.get(path, params={"label": hostile})
        assert refused.status_code == 400, (hostile, refused.status_code)
        assert "cannot be compared with the predictions" in unescape(refused.text) and "&#39;y&#39;" in refused.text
    late = app.get(path, params={"label": "late"})  # two values in the sample, thousands after it
    assert late.status_code == 200 and 'id="confusion"' not in late.text
    assert 'id="too-many-classes"' in late.text and len(late.text) < 20_000
    assert app.get(path, params={"label": ""}).status_code == 200  # none: no comparison
