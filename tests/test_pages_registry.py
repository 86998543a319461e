"""web/pages/registry.py, the named models' pages, through Flask's test client on the session's
Redis: the list of names, a name's page (versions with metrics and decisions, aliases, policy,
schedule, history), its forms moving an alias as PUT /registry/<name>/aliases/<alias> does, the
links from the models list and a model's page, a model page by reference, and a read key that
sees no form and cannot post one. Models are stored directly, as training stores them."""

from __future__ import annotations

import re
import uuid
from html import unescape

import pytest

from helpers import ONE_FEATURE_MODEL, InProcess
from modelservice import modelservice

pytestmark = pytest.mark.app

V1 = {**ONE_FEATURE_MODEL, "task": "binary", "metrics": {"auc": 0.7, "accuracy": 0.6}}
V2 = {**V1, "intercept": 0.0, "metrics": {"auc": 0.9, "accuracy": 0.8}}
EVIL = '<b>"x"</b>'


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


@pytest.fixture()
def named(client):
    """A name of its own: version 1 (production), version 2 (candidate, a decision recorded)."""
    registry = client.app.extensions["prediction_service"].registry
    name = f"pg-{uuid.uuid4().hex[:8]}"
    keys = [uuid.uuid4().hex, uuid.uuid4().hex]
    registry.add_version(name, keys[0], V1)
    registry.add_version(name, keys[1], V2)
    registry.decide(name, 2, {"decision": "kept", "metric": "auc", "candidate": 0.9, "production": 0.95,
                              "rows": {"compared": 120}, "note": EVIL}, promote=False)  # fmt: skip
    yield name, keys
    if name in registry.names():
        registry.delete_name(name)
    for key in keys:
        registry.store.delete(key)


def row(html: str, table: str, attribute: str, value) -> str:
    found = re.search(rf'<table id="{table}">.*?<tr {attribute}="{value}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, (table, value)
    return found.group(1)


def test_the_list_of_names_links_each_name(client, named):
    name, _ = named
    page = client.get("/ui/registry")
    assert page.status_code == 200
    mine = row(page.text, "names", "data-name", name)
    assert f'href="/ui/registry/{name}"' in mine and "candidate &rarr; 2, production &rarr; 1" in mine
    assert "auc 0.9" in mine  # the latest version's metrics
    assert 'href="/ui/registry">Named models</a>' in page.text  # in every page's navigation


def test_a_names_page_shows_versions_decisions_aliases_policy_and_history(client, named):
    name, keys = named
    page = client.get(f"/ui/registry/{name}")
    assert page.status_code == 200, page.text
    html = page.text
    second, first = row(html, "versions", "data-version", 2), row(html, "versions", "data-version", 1)
    assert f'href="/ui/models/{keys[1]}"' in second and "auc 0.9, accuracy 0.8" in second
    assert "<strong>kept</strong>, metric auc, candidate 0.9, production 0.95, rows compared 120" in second
    assert EVIL not in html and "&lt;b&gt;" in html  # what a decision holds is escaped
    assert 'class="muted">none<' in first  # no decision: none, said so
    assert "Make production" in second and "Make production" not in first
    assert 'data-alias="production" data-version="1"' in html and 'data-alias="candidate" data-version="2"' in html
    assert re.search(r'<table id="policy">.*?auc.*?0</td>.*?True', html, re.S)
    assert 'id="no-schedule"' in html
    history = re.search(r'<table id="history">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r"<td>(candidate|production)</td><td>([^<]*)</td>\s*<td>(\d)</td><td>([^<]*)</td>", history) == [
        ("candidate", "", "2", "new version"), ("production", "", "1", "first version")]  # fmt: skip
    assert f'href="/ui/models/{name}"' in html  # predict with the name: its production version's page


def test_a_schedule_is_shown_field_by_field(client, named):
    name, _ = named
    registry = client.app.extensions["prediction_service"].registry
    registry._change(name, lambda entry: entry.update(schedule={"every_seconds": 3600, "next_run": "2026-12-06"}))
    html = client.get(f"/ui/registry/{name}").text
    table = re.search(r'<table id="schedule">(.*?)</table>', html, re.S).group(1)
    assert "<th>every_seconds</th><td>3,600</td>" in table and "<th>next_run</th><td>2026-12-06</td>" in table


def test_a_version_retrained_on_drift_says_so_and_the_last_check_is_shown(client, named):
    name, _ = named
    registry = client.app.extensions["prediction_service"].registry
    trigger = {
        "kind": "drift",
        "version": 1,
        "model_key": "k",
        "since": "2026-12-06T01:00:00.000Z",
        "until": "2026-12-06T02:00:00.000Z",
        "count": 300,
        "drifted": ["x1", "c"],
        "score_drifted": True,
    }
    check = {"at": "2026-12-06T02:00:01.000Z", "outcome": "retrained", "count": 300, "job_id": "j1"}

    def change(entry):
        entry["versions"][1]["trigger"] = trigger
        entry["schedule"] = {"every_seconds": 3600, "when": "drift", "last_check": check}

    registry._change(name, change)  # fmt: skip
    html = client.get(f"/ui/registry/{name}").text
    second, first = row(html, "versions", "data-version", 2), row(html, "versions", "data-version", 1)
    assert "retrained on drift of version 1: drifted features x1, c; the score drifted (300 predictions" in second
    assert "retrained on drift" not in first
    table = re.search(r'<table id="schedule">(.*?)</table>', html, re.S).group(1)
    assert "<th>when</th><td>drift</td>" in table and "<th>last_check outcome</th><td>retrained</td>" in table


def test_the_move_and_promote_forms_move_the_alias_as_the_api_does(client, named):
    name, _ = named
    page = client.get(f"/ui/registry/{name}").text
    moved = client.post(f"/ui/registry/{name}/aliases", data={"alias": "production", "version": "2",
                                                               "csrf_token": form_token(page)})  # fmt: skip
    assert moved.status_code == 303 and moved.headers["Location"] == f"/ui/registry/{name}"
    entry = client.get(f"/registry/{name}").json()
    assert entry["aliases"]["production"] == 2
    assert {k: entry["history"][0][k] for k in ("alias", "from", "to", "why")} == {
        "alias": "production", "from": 1, "to": 2, "why": "manual"}  # fmt: skip
    answer = client.post("/predict/", json={"modelkey": name, "record": {"x": 0.4}}).json()
    assert answer["model"]["version"] == 2
    added = client.post(f"/ui/registry/{name}/aliases", data={"alias": "staging", "version": "1",
                                                               "csrf_token": form_token(page)})  # fmt: skip
    assert added.status_code == 303 and client.get(f"/registry/{name}").json()["aliases"]["staging"] == 1


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [({"alias": "production", "version": "7"}, 404, "versions: 1, 2"),
     ({"alias": "production", "version": "two"}, 400, "'version' must be a version number"),
     ({"alias": "Bad Alias", "version": "1"}, 400, "is not an alias"),
     ({"version": "1"}, 400, "is not an alias")],
)  # fmt: skip
def test_a_bad_move_is_the_apis_error_as_a_page_and_changes_nothing(client, named, form, status, says):
    name, _ = named
    before = client.get(f"/registry/{name}").json()
    page = client.get(f"/ui/registry/{name}").text
    refused = client.post(f"/ui/registry/{name}/aliases", data={**form, "csrf_token": form_token(page)})
    assert refused.status_code == status and says in unescape(refused.text)
    assert client.get(f"/registry/{name}").json() == before
    assert client.post(f"/ui/registry/{name}/aliases", data=form).status_code == 403  # no CSRF token
    assert client.get(f"/registry/{name}").json() == before


def test_an_unknown_name_is_the_apis_404_as_a_page(client, named):
    name, _ = named
    page = client.get(f"/ui/registry/x{name}")
    assert page.status_code == 404 and f"no model named &#39;x{name}&#39;" in page.text


def test_the_models_list_and_a_models_page_link_to_its_name(client, named):
    name, keys = named
    models = client.get("/ui/").text
    assert f'<a class="named" href="/ui/registry/{name}">{name}</a> version 1 (production)' in models
    assert f'<a class="named" href="/ui/registry/{name}">{name}</a> version 2 (candidate)' in models
    page = client.get(f"/ui/models/{keys[1]}").text
    named_line = re.search(r'<p id="named">(.*?)</p>', page, re.S).group(1)
    assert f'Version 2 of <a href="/ui/registry/{name}">{name}</a> (candidate)' in named_line


def test_a_models_page_by_reference_predicts_by_that_reference(client, named):
    name, keys = named
    page = client.get(f"/ui/models/{name}@candidate")
    assert page.status_code == 200, page.text
    assert f'/ui/models/{keys[1]}"><code>{keys[1]}</code>' in page.text  # which key the reference names
    assert f'action="/ui/models/{keys[1]}/delete"' in page.text  # a delete names the key, never the alias
    assert f'action="/ui/models/{name}@candidate"' in page.text
    curl = unescape(re.search(r'<code id="curl">(.*?)</code>', page.text, re.S).group(1))
    assert f'"modelkey": "{name}@candidate"' in curl
    answered = client.post(f"/ui/models/{name}@candidate", data={"x": "0.4", "csrf_token": form_token(page.text)})
    assert answered.status_code == 200 and 'data-label="yes"' in answered.text  # version 2 says yes at 0.4


def test_a_read_key_sees_no_form_and_cannot_post_one(base_params, named):
    name, _ = named
    app = InProcess(modelservice({**base_params, "auth_token": "reg-pages-token",
                                  "redis_key_prefix": f"rp{uuid.uuid4().hex[:6]}:"}))  # fmt: skip
    # The prefix is the app's own: its registry is empty, so the name is made again there.
    registry = app.app.extensions["prediction_service"].registry
    registry.add_version(name, uuid.uuid4().hex, V1)
    secret = app.app.extensions["prediction_service"].access.keys.create("reader", ["read"])[1]
    browser = app.app.test_client()
    token = form_token(browser.get("/ui/login").get_data(as_text=True))
    assert browser.post("/ui/login", data={"token": secret, "csrf_token": token}).status_code == 303
    page = browser.get(f"/ui/registry/{name}").get_data(as_text=True)
    assert 'data-alias="production"' in page and '<form class="move-alias"' not in page and "add-alias" not in page
    refused = browser.post(f"/ui/registry/{name}/aliases", data={"alias": "staging", "version": "1",
                                                                  "csrf_token": form_token(page)})  # fmt: skip
    assert refused.status_code == 403 and "admin" in refused.get_data(as_text=True)
    assert registry.show(name)["aliases"] == {"production": 1}


def test_a_names_page_links_its_monitoring_page_and_shows_its_traffic(client, named):
    """A visible link to /ui/registry/<name>/monitor; the traffic setting PUT /registry/<name>/traffic
    stores (mode, alias with its version, a split's percent), or none, said so."""
    name, _ = named
    html = client.get(f"/ui/registry/{name}").text
    assert f'<a id="monitor-link" href="/ui/registry/{name}/monitor">Monitoring</a>' in html
    assert 'id="no-traffic"' in html and '<table id="traffic"' not in html
    registry = client.app.extensions["prediction_service"].registry
    registry.set_traffic(name, {"alias": "candidate", "mode": "split", "percent": 30})
    html = client.get(f"/ui/registry/{name}").text
    table = re.search(r'<table id="traffic" data-mode="split">(.*?)</table>', html, re.S).group(1)
    assert "<th>mode</th><td>split</td>" in table and "<th>alias</th><td>candidate (version 2)</td>" in table
    assert "<th>percent</th><td>30</td>" in table and 'id="no-traffic"' not in html
    registry.set_traffic(name, {"alias": "candidate", "mode": "shadow"})
    table = re.search(r'<table id="traffic" data-mode="shadow">(.*?)</table>', client.get(f"/ui/registry/{name}").text,
                      re.S).group(1)  # fmt: skip
    assert "<th>mode</th><td>shadow</td>" in table and "percent" not in table
    registry.remove_traffic(name)
    assert 'id="no-traffic"' in client.get(f"/ui/registry/{name}").text
