"""web/meta.py: /docs, Swagger UI 5 over /openapi.json from the installed flask-openapi3-swagger,
with nothing fetched from elsewhere; the API's routes read from the url_map, and the document
served is the one of the app's routes."""

from __future__ import annotations

import re
from importlib.metadata import version

from flask import Flask

from helpers import API_ROUTES, InProcess
from modelservice import modelservice
from predictionservice.openapi import Route
from web.meta import SWAGGER_UI, api_routes


def test_the_docs_page_loads_swagger_ui_from_the_service_itself(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources), sources  # no CDN, no other host
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert asset.content
    bundle = (SWAGGER_UI / "js" / "swagger-ui-bundle.js").read_bytes()
    assert client.get("/docs/swagger-ui-bundle.js").content == bundle
    shipped = version("flask-openapi3-swagger")  # the package is versioned as the Swagger UI it ships
    assert shipped.startswith("5.") and f'"{shipped}"'.encode() in bundle  # 4.x cannot read OpenAPI 3.1
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


def test_the_api_routes_are_the_rules_less_pages_twins_head_and_options():
    """On a stand-in app: a path per rule in the document's form, a route per method; the pages,
    Swagger UI's files and a slashless twin are no routes of the API."""
    app = Flask("stand-in", static_folder=None)
    view = lambda **_: ""  # noqa: E731
    app.add_url_rule("/things/", "things.list", view, methods=["GET"], strict_slashes=False)
    app.add_url_rule("/things", "things.list", view, methods=["GET"])  # the twin
    app.add_url_rule("/things/<int:number>/<name>", "things.one", view, methods=["GET", "PUT"])
    for page in ("/", "/ui/things", "/ui/things/<name>", "/docs/<asset>"):
        app.add_url_rule(page, f"pages.{page}", view)
    assert api_routes(app.url_map) == [
        Route("/things/", "get", "things.list"),
        Route("/things/{number}/{name}", "get", "things.one", only_method=False),
        Route("/things/{number}/{name}", "put", "things.one", only_method=False),
    ]


def test_the_served_document_has_the_apps_routes(client):
    document = client.get("/openapi.json").json()
    assert {path: set(item) - {"parameters"} for path, item in document["paths"].items()} == API_ROUTES


def test_health_and_the_document_show_the_service_version(client):
    """The version in one place (predictionservice/version.py): /health's report, /v2's server
    metadata and the OpenAPI document's info all say it."""
    from predictionservice.version import __version__

    assert client.get("/health").json()["version"] == __version__
    assert client.get("/v2").json()["version"] == __version__
    assert client.get("/openapi.json").json()["info"]["version"] == __version__
