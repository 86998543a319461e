"""The models' pages in process: the list tells models apart and filters them, the compare view
sets two or more side by side (saying whether their held-out rows were the same), and a linear
model's chart ranks standardized effects, not raw coefficients."""

from __future__ import annotations

import re
import uuid
from html import unescape

import pytest

from helpers import stored_model
from test_pages import STORED, post_form
from web import readable

TAG = f"t{uuid.uuid4().hex[:8]}"  # this module's models, whatever else the session stored
REGRESSION = {
    **STORED,
    "name": "LinearRegressionWrapper",
    "task": "regression",
    "created_at": "2026-01-02T00:00:00Z",
    "schema": {"label": {"key": "balance"}, "features": [{"key": "x1"}, {"key": "c", "values": {"a": 0, "b": 1}}]},
    "feature_names": ["x1", "c=a", "c=b"],
    "parameters": {"inputCollection": "ui_test.houses", "description": "balance from x1", "tags": [TAG, "money"]},
    "metrics": {"rmse": 48380.47, "r2": 0.61},
}
BINARY = {**STORED, "parameters": {**STORED["parameters"], "description": "who says yes", "tags": [TAG],
                                   "seed": 7, "holdoutFraction": 0.2}}  # fmt: skip


@pytest.fixture(scope="module")
def models(client):
    binary = stored_model(client, "list-b", BINARY)
    better = stored_model(client, "list-c", {**BINARY, "metrics": {"auc": 0.95, "accuracy": 0.7}})
    regression = stored_model(client, "list-r", REGRESSION)
    keys = next(binary), next(better), next(regression)
    yield keys
    for made in (binary, better, regression):
        next(made, None)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', html)


def test_the_list_shows_what_tells_models_apart(client, models):
    binary, _, regression = models
    html = client.get("/ui/", query_string={"tag": TAG}).text
    assert set(rows(html)) == set(models)
    row = re.search(rf'<tr data-key="{regression}">(.*?)</tr>', html, re.S).group(1)
    for shown in ("linear regression", "regression", "ui_test.houses", "balance", "rmse 48,380", "balance from x1",
                  '<span class="tag">money</span>', 'title="2026-01-02 00:00:00 UTC"'):  # fmt: skip
        assert shown in row, shown
    assert re.search(r"<time [^>]*>\d+ (month|year)s? ago</time>", row)
    assert "auc 0.9" in re.search(rf'<tr data-key="{binary}">(.*?)</tr>', html, re.S).group(1)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"task": "regression"}, {2}),
        ({"task": "binary classification"}, {0, 1}),
        ({"algorithm": "LogisticRegressionWrapper"}, {0, 1}),
        ({"dataset": "ui_test.houses"}, {2}),
        ({"tag": "money"}, {2}),
        ({"q": "WHO yes"}, {0, 1}),
        ({"q": "balance x1"}, {2}),
        ({"q": "nothing-has-this"}, set()),
    ],
)
def test_the_filters_narrow_the_list(client, models, query, expected):
    html = client.get("/ui/", query_string={"tag": TAG, **query} if "tag" not in query else query).text
    shown = set(rows(html))
    assert {models[i] for i in expected} == shown & set(models)
    if not expected:
        assert "No model matches these filters." in html
    assert 'id="filters"' in html and '<label for="filter-q">' in html


def test_compare_sets_the_metrics_side_by_side_and_marks_the_better(client, models):
    binary, better, regression = models
    html = client.get("/ui/compare", query_string=[("model", binary), ("model", better)]).text
    auc = re.search(r'<tr class="metric" data-metric="auc">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="number( better)?">([^<]*)</td>', auc) == [("", "0.9"), (" better", "0.95")]
    accuracy = re.search(r'data-metric="accuracy">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="number( better)?">', accuracy) == [" better", ""]
    assert "the same held-out rows" in html and 'class="error"' not in html

    mixed = client.get("/ui/compare", query_string=[("model", binary), ("model", regression)]).text
    assert "different held-out rows" in mixed
    rmse = re.search(r'data-metric="rmse">(.*?)</tr>', mixed, re.S).group(1)
    assert re.findall(r'<td class="number( better)?">([^<]*)</td>', rmse) == [("", ""), ("", "48,380")]


def test_compare_asks_for_two_models_and_names_a_missing_one(client, models):
    one = client.get("/ui/compare", query_string={"model": models[0]})
    assert one.status_code == 400 and "tick from 2 to 6 models to compare (got 1)" in unescape(one.text)
    missing = client.get("/ui/compare", query_string=[("model", models[0]), ("model", "no-such-model")])
    assert missing.status_code == 404 and "no-such-model" in missing.text


def test_the_list_posts_the_ticked_models_to_compare(client, models):
    html = client.get("/ui/", query_string={"tag": TAG}).text
    form = re.search(r'<form id="compare-form" method="get" action="([^"]+)">', html)
    assert form and form.group(1) == "/ui/compare"
    assert all(f'name="model" value="{key}"' in html for key in models)


SPREAD = {
    **STORED,
    "feature_names": ["duration", "c=a", "c=b"],
    "schema": {
        "label": {"key": "y", "values": {"no": 0, "yes": 1}},
        "features": [{"key": "duration"}, {"key": "c", "values": {"a": 0, "b": 1}}],
    },
    "coefficients": [0.004, -0.5, 0.25],  # duration's is the smallest in raw units...
    "feature_means": [258.0, 0.5, 0.5],
    "feature_stds": [257.5, 0.5, 0.5],  # ...and the largest effect: 0.004 times 257.5 = 1.03
}


def chart_bars(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<rect class="bar[^"]*"[^>]*><title>([^<]*): ([^<]*)</title>', html)


def test_a_linear_models_chart_ranks_standardized_effects(client):
    for key in stored_model(client, "effects", SPREAD):
        html = client.get(f"/ui/models/{key}").text
        assert "standardized effects" in html and "training standard deviation" in html
        assert chart_bars(html) == [("duration", "1.03"), ("c=a", "-0.25"), ("c=b", "0.125")]


def test_a_model_stored_without_spreads_shows_raw_coefficients_saying_so(client):
    old = {k: v for k, v in SPREAD.items() if k != "feature_stds"}
    for key in stored_model(client, "raw", old):
        html = client.get(f"/ui/models/{key}").text
        assert "standardized effects" not in html and "without its features&#39; spreads" in html
        assert chart_bars(html)[0] == ("c=a", "-0.5")


def test_the_answer_is_worded_plainly(client, models):
    page = post_form(client, f"/ui/models/{models[0]}", {"x1": "0.7", "c": "a"})
    found = re.search(r'data-probability="([^"]*)"', page.text)
    words = re.sub(r"\s+", " ", re.search(r'<p id="answer-words">(.*?)</p>', page.text, re.S).group(1))
    assert re.fullmatch(r"Predicted <strong>(yes|no)</strong>: the chance of yes is [\d.]+ %\.", words), words
    assert readable.percent(float(found.group(1))) in words
