"""docs/: the manual builds with `mkdocs build --strict` (a broken link, a page missing from the
navigation or a generator that fails is an error), every page is in its navigation, and the
getting-started page's examples, and Triton's client on the other clients' page, run as written
against a real service, as the README's do."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT, fenced_blocks, manual_pages, run_shell_examples

DOCS = ROOT / "docs"
GETTING_STARTED = DOCS / "getting-started.md"
TOOLS = DOCS / "tools.md"


def example_blocks() -> list[tuple[str, str]]:
    """The getting-started page's blocks, but for the two commands (make run is the service
    itself, make test the suite that runs this)."""
    return fenced_blocks(GETTING_STARTED.read_text().split("\n## The two commands\n", 1)[1].split("\n## ", 1)[1])


@pytest.mark.unit
def test_every_page_of_the_manual_is_in_its_navigation():
    pages = {path.name for path in DOCS.glob("*.md")}
    listed = manual_pages()
    assert sorted(listed) == sorted(pages) and len(set(listed)) == len(listed)


@pytest.mark.app
def test_the_manual_builds_strictly(tmp_path):
    """The whole build as `make docs` runs it, into a folder of the test's: its OpenAPI document
    is the service's own, Swagger UI's files are beside it, and no page fetches anything."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads((tmp_path / "openapi.json").read_text())
    assert document["openapi"].startswith("3.1") and "/predict/" in document["paths"]
    assert '"swagger/swagger-ui-bundle.js"' in (tmp_path / "openapi.html").read_text()
    assert (tmp_path / "swagger" / "swagger-ui-bundle.js").stat().st_size > 100_000
    assert "<!-- settings -->" not in (tmp_path / "configuration.html").read_text()
    pages = [path.read_text() for path in tmp_path.glob("*.html")]
    fetched = {tag for page in pages for tag in re.findall(r"<(?:link|script)[^>]*https?://[^>]*>", page)}
    assert fetched == set()  # no font, style or script from the network: the manual reads offline


def test_getting_started_runs_as_written(service, bank_collection, tmp_path):
    blocks = example_blocks()
    assert [language for language, _ in blocks].count("sh") >= 5
    out = shell_out = run_shell_examples(blocks, service.url)
    assert '"status":"ok"' in out and "training job " in out and "trained: held-out AUC" in out  # the README's
    assert "COMPLETED model " in out and re.search(r'"prediction":0,"label":"no","probability":0\.12\d*', out)
    explained = re.search(
        r'"explanation":\{"base":[^{}]*"contributions":\{[^{}]*"poutcome":[^{}]*\},"output":"margin"', out
    )
    assert explained, out[-3000:]  # the explained record: one contribution per feature, the log-odds
    assert "COMPLETED scored 45209 rows into datasets.bankResults" in out
    # the export's header: the scored fields, then the input document's, nested ones dotted
    assert "score,label,probability,probabilities.no,probabilities.yes,value._id,value.age," in out, out[-3000:]
    assert '"inserted":300' in out and '"label":{"key":"churned","values":{"no":0,"yes":1}}' in out
    python, client_flow = [code for language, code in blocks if language == "python"]
    host = service.url.split("//", 1)[1]
    out = run_python_example(python.replace("localhost:5000", host), tmp_path, {})
    assert "{'inserted': 300, 'dataset': 'examples.churn', 'mode': 'replace'}" in out
    assert "'task': 'binary classification'" in out and "'input_collection': 'examples.churn'" in out
    out = run_python_example(client_flow, tmp_path, {"PREDICTION_SERVICE_URL": service.url})
    assert "invalid_record a record cannot be scored: field 'age' is not a number" in out
    key = re.search(r"training job (\w+)", shell_out).group(1)  # the bank model the shell blocks trained
    check_the_triton_example(host, key, tmp_path)


def check_the_triton_example(host: str, key: str, tmp_path) -> None:
    """The other clients' page: Triton's client scores the record /predict/ scored, the same way."""
    triton = fenced_blocks(TOOLS.read_text().split("\n## Triton's client\n", 1)[1].split("\n## ", 1)[0])
    assert [language for language, _ in triton] == ["python"]
    out = run_python_example(triton[0][1].replace("localhost:5000", host), tmp_path, {"MODEL_KEY": key})
    assert re.fullmatch(r"\[\['no'\]\] \[\[0\.12\d*\]\]\n", out), out


def run_python_example(code: str, tmp_path, env: dict[str, str]) -> str:
    """One Python block run as a script from the checkout (the client imported from it)."""
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout
