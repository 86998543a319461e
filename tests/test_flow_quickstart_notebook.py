"""examples/quickstart.ipynb executed top to bottom with nbclient (a real IPython kernel) against
the real service, named by PREDICTION_SERVICE_URL as a user names it: the notebook cannot rot."""

from __future__ import annotations

import ast
import numbers

import nbformat
from nbclient import NotebookClient

from helpers import EXAMPLES, ROOT

NOTEBOOK = EXAMPLES / "quickstart.ipynb"
NAME = "quickstart-xor"


def outputs(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", []))


def result(cell) -> str:
    """The cell's value (its last expression's text), not what it printed."""
    return "".join(
        str(o["data"]["text/plain"]) for o in cell.get("outputs", []) if o["output_type"] == "execute_result"
    )


def test_the_quickstart_notebook_runs_against_the_service(service, monkeypatch):
    monkeypatch.setenv("PREDICTION_SERVICE_URL", service.url)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "saved with outputs"
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(o.get("output_type") != "error" for cell in code for o in cell.outputs)
    assert "'status': 'ok'" in outputs(code[0])
    assert "'inserted': 480" in outputs(code[1])
    assert "'auc'" in outputs(code[3])
    accuracy = float(outputs(code[5]).split("held-out accuracy ")[1].split()[0])
    assert accuracy > 0.85  # xor at 3 % noise: a forest gets near 0.97
    assert "(480," in outputs(code[6])  # every uploaded row scored
    named = outputs(code[7])  # by its name: the training job's model is version 1 of quickstart-xor
    assert "'name': 'quickstart-xor'" in named and "'version': 1" in named
    assert "{'production': 1}" in outputs(code[8])
    assert "'inserted': 120" in outputs(code[9])  # the appended rows
    retrained = ast.literal_eval(result(code[10]))[0]  # the retrain's model key
    entry = service.get(f"/registry/{NAME}").json()  # the service's word, against what the notebook showed
    latest = entry["versions"][-1]
    assert (latest["version"], latest["model_key"]) == (2, retrained)
    decision = latest["decision"]
    assert decision["decision"] in ("promoted", "kept") and decision["metric"] == "auc"
    assert isinstance(decision["new"], numbers.Real) and isinstance(decision["production"], numbers.Real)
    assert decision["rows"] > 0
    shown = ast.literal_eval(result(code[11]))
    assert shown == {k: decision[k] for k in ("decision", "metric", "new", "production", "rows")}
    production = entry["aliases"]["production"]
    assert production == (2 if decision["decision"] == "promoted" else 1)
    assert f"answered by version {production}\n" in outputs(code[12])
    served, label = ast.literal_eval(result(code[12]))  # the name answers from its production version
    assert (served["name"], served["version"]) == (NAME, production) and label in ("yes", "no")
    assert served["model_key"] == entry["versions"][production - 1]["model_key"]
    assert any("image/png" in o.get("data", {}) for o in code[-1].outputs)  # the plot
    for trained in (code[3], code[10]):  # the training and the retrain: a bar to the end
        progress = "".join(o.get("text", "") for o in trained.outputs if o.get("name") == "stderr")
        assert "100%|" in progress and "COMPLETED" in progress
