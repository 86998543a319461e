"""web/pages/monitor.py: a named model's monitoring page through Flask's test client, on a name
registered in the session's Redis with logged predictions in its MongoDB: the window, quality,
training vs live histograms (inline SVG) per feature with the drifted ones first, and the API's
errors as pages."""

from __future__ import annotations

import re

import pytest

from helpers import monitored_name

pytestmark = pytest.mark.app


def test_the_page_shows_quality_and_each_feature_drifted_first(client, mongo_client):
    name, key, cleanup = monitored_name(client.params, mongo_client)
    try:
        page = client.get(f"/ui/registry/{name}/monitor")
        assert page.status_code == 200, page.text
        assert "40 logged predictions since" in page.text and key in page.text
        assert re.search(r"<th>accuracy</th><td>0.75", page.text)
        assert 'data-feature="x"' in page.text and 'class="feature drifted"' in page.text
        # two bins each for x and the score, a training and a live column each
        assert page.text.count('class="bar training"') == 4 and page.text.count('class="bar live"') == 4
        assert 'id="score" data-drifted="true"' in page.text
        empty = client.get(f"/ui/registry/{name}/monitor", params={"since": "2999-01-01T00:00:00Z"})
        assert empty.status_code == 200 and "no prediction of version 1" in empty.text and "<svg" not in empty.text
        bad = client.get(f"/ui/registry/{name}/monitor", params={"since": "soon"})
        assert bad.status_code == 400 and "ISO 8601" in bad.text
    finally:
        cleanup()


VERDICT = r"<figcaption>(?:\w+): (<span [^>]*>[^<]*</span>)"  # a chart's title, then its verdict


def verdicts(html: str) -> dict[str, str]:
    """Each chart's verdict as the page marks it up: {feature key or 'score': the verdict span}."""
    found = dict(re.findall(r'data-feature="(\w+)"><figure class="chart">\s*' + VERDICT, html))
    score = re.search(r'<div id="score"[^>]*><figure class="chart">\s*' + VERDICT, html)
    return {**found, **({"score": score.group(1)} if score else {})}


def test_a_drifted_score_or_feature_is_marked_in_the_warning_style_else_neutral(client, mongo_client):
    """The score's verdict as a feature's: drifted in the page's red warning style (.drifted, as
    its stylesheet colours it), not drifted in the neutral (muted) one."""
    drifted = '<span class="verdict drifted">drifted</span>'
    neutral = '<span class="verdict muted">not drifted</span>'
    css = client.get("/ui/static/ui.css").text
    assert re.search(r"(^|\s)\.drifted \{ color: #c0504d; font-weight: bold; \}", css, re.M)
    name, key, cleanup = monitored_name(client.params, mongo_client)
    try:
        html = client.get(f"/ui/registry/{name}/monitor").text
        assert verdicts(html) == {"x": drifted, "score": drifted}, html
        assert '<div id="score" data-drifted="true" class="score drifted">' in html
        # half the window below each training bin edge, half above: the training profile's 50/50
        db, collection = client.params["prediction_log_collection"].split(".", 1)
        log = mongo_client[db][collection]
        low = [d["_id"] for d in log.find({"model.model_key": key}).sort("record.x", 1).limit(20)]
        changed = log.update_many({"_id": {"$in": low}}, {"$set": {"record.x": -1.0, "answer.probability": 0.1}})
        assert changed.modified_count == 20
        html = client.get(f"/ui/registry/{name}/monitor").text
        assert verdicts(html) == {"x": neutral, "score": neutral}, html
        assert '<div id="score" data-drifted="false" class="score">' in html and "verdict drifted" not in html
    finally:
        cleanup()
