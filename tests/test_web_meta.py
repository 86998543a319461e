"""web/meta.py: /docs, Swagger UI over /openapi.json from the installed swagger-ui-bundle, with
nothing fetched from elsewhere."""

from __future__ import annotations

import re

import swagger_ui_bundle

from helpers import InProcess
from modelservice import modelservice


def test_the_docs_page_loads_swagger_ui_from_the_service_itself(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources), sources  # no CDN, no other host
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert asset.content
    bundle = (swagger_ui_bundle.swagger_ui_path / "swagger-ui-bundle.js").read_bytes()
    assert client.get("/docs/swagger-ui-bundle.js").content == bundle
    assert '"/openapi.json"' in client.get("/docs/docs-init.js").text


def test_only_the_pages_own_files_are_served(client):
    for name in ("index.html", "..%2Fdefaults.py", "swagger-ui.js.map", "nothing"):
        answer = client.get(f"/docs/{name}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_the_docs_need_no_token(base_params):
    guarded = InProcess(modelservice({**base_params, "auth_token": "s3cret"}))
    assert guarded.get("/docs").status_code == 200
    assert guarded.get("/docs/swagger-ui.css").status_code == 200
    assert guarded.get("/openapi.json").status_code == 401
