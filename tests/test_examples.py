"""examples/: the shipped data sets are what make_data.py draws, and every job document trains on
its data through the API."""

from __future__ import annotations

import importlib.util
import json

import pytest

from helpers import ROOT
from modelfactory import ModelFactory
from predictionservice.config import load_parameters

EXAMPLES = ROOT / "examples"
JOBS = sorted(p.name for p in EXAMPLES.glob("*.json"))


def make_data():
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLES / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_data_is_what_make_data_draws(tmp_path):
    module = make_data()
    for name in module.DATASETS:
        assert module.write(name, tmp_path).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_there_is_a_job_document_for_every_algorithm():
    names = {json.loads((EXAMPLES / job).read_text())["name"] for job in JOBS}
    assert names == set(load_parameters(environ={})["algorithms"])


@pytest.mark.parametrize("job_file", JOBS)
def test_each_example_job_trains_on_its_data(service, job_file):
    job = json.loads((EXAMPLES / job_file).read_text())
    ModelFactory([job["name"]]).algorithm_class(job["name"]).check(job)  # its algorithm takes it as it is
    db, collection = job["inputCollection"].split(".")
    with open(EXAMPLES / f"{collection}.csv", "rb") as data:
        loaded = service.request("PUT", f"/datasets/{db}/{collection}", data=data, headers={"Content-Type": "text/csv"})
    assert loaded.status_code == 200 and loaded.json()["inserted"] == 600, loaded.text
    final, _ = service.train(job)
    assert final["status"] == "COMPLETED", final
    stored = service.get(f"/models/{final['model_key']}").json()
    assert stored["parameters"]["description"] == job["description"]
    service.request("DELETE", f"/models/{final['model_key']}")
