"""The README runs as written: its quick-start blocks (shell and Python), extracted from the
README itself, are run against a real service (worker and web server), with the service's
address in place of localhost:5000, so an example can never rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import ROOT

README = ROOT / "README.md"


def quick_start_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block of the Quick start section, in order."""
    text = README.read_text()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(sh|python)\n(.*?)```", section, re.DOTALL)


def test_the_quick_start_has_shell_and_python_blocks():
    languages = [language for language, _ in quick_start_blocks()]
    assert languages.count("sh") >= 4 and languages.count("python") == 2  # requests, then the client
    assert "../shared" not in README.read_text().split("\n## Quick start\n", 1)[1].split("\n## Configuration", 1)[0]
    assert "[`docs/API.md`](docs/API.md)" in README.read_text()


def test_the_quick_start_runs_as_written(service, bank_collection, tmp_path):
    host = service.url.split("//", 1)[1]
    blocks = quick_start_blocks()
    # -e stops at the first failing command; no pipefail: `curl ... | head` ends curl early, as in a terminal
    shell = "\n".join(code for language, code in blocks if language == "sh").replace("localhost:5000", host)
    run = subprocess.run(["bash", "-eu", "-c", shell], cwd=ROOT, capture_output=True, text=True,
                         timeout=1200)  # fmt: skip
    out = run.stdout
    assert run.returncode == 0, out[-3000:] + run.stderr[-3000:]
    assert '"status":"ok"' in out and "training job " in out
    assert "COMPLETED model " in out and "trained: held-out AUC" in out
    assert re.search(r'"prediction":0,"label":"no","probability":0\.12\d*', out), out[-2000:]
    explained = re.search(
        r'"explanation":\{"base":[^{}]*"contributions":\{[^{}]*"poutcome":[^{}]*\},"output":"margin"', out
    )
    assert explained, out[-3000:]  # the explained record: one contribution per feature, the log-odds
    assert "COMPLETED scored 45209 rows into datasets.bankResults" in out
    # the export's header: the scored fields, then the input document's, nested ones dotted
    assert "score,label,probability,probabilities.no,probabilities.yes,value._id,value.age," in out, out[-3000:]
    assert '"inserted":300' in out and '"label":{"key":"churned","values":{"no":0,"yes":1}}' in out
    python, client_flow = [code for language, code in blocks if language == "python"]
    script = tmp_path / "flow.py"
    script.write_text(python.replace("localhost:5000", host))
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "{'inserted': 300, 'dataset': 'examples.churn', 'mode': 'replace'}" in run.stdout
    assert "'task': 'binary classification'" in run.stdout and "'input_collection': 'examples.churn'" in run.stdout
    script = tmp_path / "client.py"
    script.write_text(client_flow)
    env = {**os.environ, "PREDICTION_SERVICE_URL": service.url, "PYTHONPATH": str(ROOT)}  # as from the checkout
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "invalid_record a record cannot be scored: field 'age' is not a number" in run.stdout
