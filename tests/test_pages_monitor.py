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
