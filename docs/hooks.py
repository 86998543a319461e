"""MkDocs hooks (mkdocs.yml names this file): the manual's pages that are generated, never copied
by hand, so they cannot drift from the code.

* ``configuration.md``: its ``<!-- settings -->`` marker becomes the table of every setting, as
  ``python -m predictionservice.config --markdown`` prints it from ``defaults.py``;
* ``openapi.json``: the service's own ``/openapi.json``, answered by an app the factory builds
  (no Redis or MongoDB needed), written into the site and into the script that starts Swagger UI
  5, whose files come from the installed flask-openapi3-swagger package: ``openapi.md`` renders
  it offline, even from file://.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MARKER = "<!-- settings -->"
# Swagger UI's files as the package ships them: the name in the site -> its folder in the package.
SWAGGER_FILES = {"swagger-ui.css": "css", "swagger-ui-bundle.js": "js"}
# The document is written into the script, not fetched: the page works from file:// too.
SWAGGER_INIT = """window.addEventListener("load", function () {
  SwaggerUIBundle({spec: %s, dom_id: "#swagger-ui", deepLinking: true});
});
"""


def settings_table() -> str:
    """The settings table from defaults.py (the service's code, not a copy of it)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from predictionservice.config import settings_markdown

    return settings_markdown()


def openapi_json() -> str:
    """What GET /openapi.json answers, from an app built by the factory on default settings: the
    document is made from the routes and their schemas when the app is built, with no server."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from modelservice import modelservice
    from predictionservice.config import load_parameters

    answer = modelservice(load_parameters(environ={})).test_client().get("/openapi.json")
    if answer.status_code != 200:
        raise RuntimeError(f"/openapi.json answered {answer.status_code}: {answer.get_data(as_text=True)[:200]}")
    return json.dumps(answer.get_json(), indent=2)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Fill the generated part of the configuration page."""
    if page.file.src_uri == "configuration.md":
        return markdown.replace(SETTINGS_MARKER, settings_table())
    return markdown


def on_files(files: Any, config: Any) -> Any:
    """Add the OpenAPI document and Swagger UI's files to the site (never to the repository)."""
    from mkdocs.structure.files import File

    swagger = resources.files("flask_openapi3_swagger") / "templates" / "swagger"
    document = openapi_json()
    files.append(File.generated(config, "openapi.json", content=document))
    files.append(File.generated(config, "swagger/swagger-init.js", content=SWAGGER_INIT % document))
    for name, folder in SWAGGER_FILES.items():
        files.append(File.generated(config, f"swagger/{name}", abs_src_path=str(swagger / folder / name)))
    return files
