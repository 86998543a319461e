"""examples/quickstart.ipynb executed top to bottom with nbclient (a real IPython kernel) against
the real service, named by PREDICTION_SERVICE_URL as a user names it: the notebook cannot rot."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from helpers import EXAMPLES, ROOT

NOTEBOOK = EXAMPLES / "quickstart.ipynb"


def outputs(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", []))


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
    assert any("image/png" in o.get("data", {}) for o in code[-1].outputs)  # the plot
    progress = "".join(o.get("text", "") for o in code[3].outputs if o.get("name") == "stderr")
    assert "100%|" in progress and "COMPLETED" in progress
