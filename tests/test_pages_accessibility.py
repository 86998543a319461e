"""Accessibility basics of every page, in process: each form field a person fills (not hidden,
not a button) has a label — a <label for> naming its id, a <label> around it, or aria-label —
and every page says its language and scales to a phone (the viewport meta tag). The 390-pixel
layout itself is measured in Chromium (test_pages_browser)."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser

import pytest

from helpers import ONE_FEATURE_MODEL, TOKEN, InProcess, stored_model
from modelservice import modelservice
from predictionservice.jobstore import COMPLETED, JobStore
from predictionservice.redisclient import connect
from test_pages import STORED

pytestmark = pytest.mark.app

UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class Fields(HTMLParser):
    """The page's form fields and what labels them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str]] = []  # each field's attributes, with "_in_label" when wrapped
        self.label_for: set[str] = set()
        self.open_labels = 0
        self.html_lang = ""
        self.viewport = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_lang = found.get("lang", "")
        elif tag == "meta" and found.get("name") == "viewport":
            self.viewport = "width=device-width" in found.get("content", "")
        elif tag == "label":
            self.open_labels += 1
            if found.get("for"):
                self.label_for.add(found["for"])
        elif tag in ("input", "select", "textarea") and found.get("type", "text") not in UNLABELLED_TYPES:
            self.fields.append({**found, "_tag": tag, "_in_label": "1" if self.open_labels else ""})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.open_labels = max(0, self.open_labels - 1)

    def unlabelled(self) -> list[str]:
        return [
            f"<{f['_tag']} name={f.get('name')!r} id={f.get('id')!r}>"
            for f in self.fields
            if not (f["_in_label"] or f.get("aria-label") or (f.get("id") and f["id"] in self.label_for))
        ]


@pytest.fixture(scope="module")
def pages(client, mongo_client):
    """A path to every page, with something on it: a model, a job, a dataset, a name."""
    db = f"a11y_{uuid.uuid4().hex[:8]}"
    mongo_client[db]["rows"].insert_many(
        [{"x1": i / 2, "c": "ab"[i % 2], "y": "no yes".split()[i % 2]} for i in range(20)]
    )
    made = stored_model(client, "a11y", STORED), stored_model(client, "a11y", {**STORED, "metrics": {"auc": 0.8}})
    key, other = next(made[0]), next(made[1])
    jobs = JobStore(connect(client.params["redis_url"]), 600)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "training", {"name": "RandomForestWrapper", "inputCollection": f"{db}.rows"})
    jobs.update(job_id, COMPLETED, "trained", model_key=key, metrics={"auc": 0.9})
    registry = client.app.extensions["prediction_service"].registry
    name = f"a11y-{uuid.uuid4().hex[:8]}"
    registry.add_version(name, key, {**ONE_FEATURE_MODEL, "task": "binary"})
    yield [
        "/ui/", f"/ui/models/{key}", f"/ui/compare?model={key}&model={other}", "/ui/jobs", f"/ui/jobs/{job_id}",
        "/ui/train", f"/ui/train?dataset={db}.rows", f"/ui/train?dataset={db}.rows&label=y", "/ui/datasets",
        f"/ui/datasets/{db}/rows", "/ui/registry", f"/ui/registry/{name}", f"/ui/registry/{name}/monitor",
    ]  # fmt: skip
    registry.delete_name(name)
    for each in made:
        next(each, None)
    mongo_client.drop_database(db)


def check(html: str, path: str) -> None:
    parsed = Fields()
    parsed.feed(html)
    assert parsed.html_lang == "en" and parsed.viewport, path
    assert not parsed.unlabelled(), (path, parsed.unlabelled())


def test_every_field_of_every_page_has_a_label(client, pages):
    for path in pages:
        page = client.get(path)
        # the monitoring page of a name with no profile is the API's 409, as a page
        assert page.status_code == (409 if path.endswith("/monitor") else 200), (path, page.status_code)
        check(page.text, path)


def test_the_token_forms_and_the_keys_page_have_labels(base_params):
    app = InProcess(modelservice({**base_params, "auth_token": TOKEN}))
    asked = app.get("/ui/keys")
    assert asked.status_code == 401
    check(asked.text, "/ui/login")
    csrf = asked.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert app.post("/ui/login", data={"token": TOKEN, "next": "/ui/keys", "csrf_token": csrf}).status_code == 303
    keys = app.get("/ui/keys")
    assert keys.status_code == 200
    check(keys.text, "/ui/keys")


def test_the_check_finds_an_unlabelled_field_and_accepts_each_way_of_labelling():
    parsed = Fields()
    parsed.feed(
        '<html lang="en"><meta name="viewport" content="width=device-width"><form><input name="a">'
        '<label for="b">B</label><input id="b" name="b"><label>C <select name="c"></select></label>'
        '<input type="hidden" name="h"><input aria-label="d" name="d"><textarea id="e"></textarea></form>'
    )
    assert parsed.unlabelled() == ["<input name='a' id=None>", "<textarea name=None id='e'>"]
