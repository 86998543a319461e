"""MkDocs hooks (mkdocs.yml names this file): the manual's pages that are generated, never copied
by hand, so they cannot drift from the code or claim a figure nobody measured.

* ``configuration.md``: its ``<!-- settings -->`` marker becomes the table of every setting, as
  ``python -m predictionservice.config --markdown`` prints it from ``defaults.py``;
* ``performance.md``: its ``<!-- results -->`` marker becomes one table per committed benchmark
  result in ``docs/results/*.json`` (and says so plainly when there is none);
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
RESULTS = ROOT / "docs" / "results"
SETTINGS_MARKER = "<!-- settings -->"
RESULTS_MARKER = "<!-- results -->"
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


def load_results(folder: Path = RESULTS) -> list[dict[str, Any]]:
    """Every committed result file, oldest benchmark name first (a stable page)."""
    results = [json.loads(path.read_text()) | {"file": path.name} for path in sorted(folder.glob("*.json"))]
    return sorted(results, key=lambda r: (r.get("benchmark", ""), r.get("started_at", "")))


def _cell(value: Any) -> str:
    """A value as a table cell: JSON for anything but text, pipes escaped."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|")


def _provenance(result: dict[str, Any]) -> str:
    """When, at which commit and on what machine a result was measured, and its file."""
    machine = result.get("machine", {})
    return (
        f"Run {result.get('started_at', 'at an unrecorded time')} at commit `{result.get('commit', 'unrecorded')}`, "
        f"{machine.get('cpus', '?')} CPUs, load average {_cell(machine.get('loadavg_at_start'))} at the start and "
        f"{_cell(machine.get('loadavg_at_end'))} at the end ({result.get('seconds', '?')} s in all; "
        f"`docs/results/{result['file']}`)."
    )


def _spread(ratio: dict[str, Any]) -> str:
    """A ratio measured in interleaved rounds (its value their median): the rounds' lowest and
    highest (every round is in the file)."""
    if "rounds" not in ratio:
        return "one measurement"
    return f"rounds {_cell(ratio.get('min'))} to {_cell(ratio.get('max'))}"


def result_markdown(result: dict[str, Any]) -> str:
    """One benchmark's section: how to reproduce it, where and when it ran, its ratios against
    their goals, and its figures; only what the file says."""
    lines = [
        f"## {result.get('benchmark', result['file'])}",
        "",
        f"Reproduce: `{result['command']}`" if result.get("command") else "Reproduce: (the file names no command)",
        "",
        _provenance(result),
        "",
    ]
    if result.get("ratios"):
        lines += ["| ratio | value | of | goal | met | spread |", "|---|---|---|---|---|---|"]
        for key, ratio in result["ratios"].items():
            met = {True: "yes", False: "**no**"}.get(ratio.get("met"), "no goal")
            lines.append(
                f"| {key} | {_cell(ratio.get('value'))} | {_cell(ratio.get('of', ''))} "
                f"| {_cell(ratio.get('goal', ''))} | {met} | {_spread(ratio)} |"
            )
        lines.append("")
    for part in ("figures", "baseline"):  # the baseline's own, when a file keeps them apart
        if isinstance(result.get(part), dict):
            lines += [f"| {part.rstrip('s')} | value |", "|---|---|"]
            lines += [f"| {key} | {_cell(value)} |" for key, value in result[part].items()] + [""]
    return "\n".join(lines)


def results_markdown(results: list[dict[str, Any]]) -> str:
    """The performance page's generated part: a section per result, or a plain statement that
    nothing is committed (the page then quotes no figure at all)."""
    if not results:
        return "**No benchmark result is committed yet**, so this page quotes no figure.\n"
    return "\n".join(result_markdown(result) for result in results)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Fill the generated parts of the configuration and performance pages."""
    if page.file.src_uri == "configuration.md":
        return markdown.replace(SETTINGS_MARKER, settings_table())
    if page.file.src_uri == "performance.md":
        return markdown.replace(RESULTS_MARKER, results_markdown(load_results()))
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
