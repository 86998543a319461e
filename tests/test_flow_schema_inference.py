"""GET /datasets/<db>/<collection>/schema over HTTP on a measurement of 20,000 distinct values:
inferred as a regression target whatever its number of values, usable as it is in a job that a
real worker trains, and ?task= overriding the label's kind both ways."""

from __future__ import annotations

import csv
import io

import pytest

from helpers import known_rows

DB = "schema_inference"
ROWS = 20_000


@pytest.fixture(scope="module")
def measured(service):
    """y = 3 x1 - 2 x2 + effect(c) + noise (20,000 distinct numbers) and stars, a rating of whole
    numbers 1 to 3 (x1 > 0 and x2 > 0 each add one), uploaded as CSV."""
    rows, _, optimum = known_rows("linear", ROWS, seed=25)
    for row in rows:
        row["stars"] = 1 + (row["x1"] > 0) + (row["x2"] > 0)
    assert len({row["y"] for row in rows}) == ROWS
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    loaded = service.request("PUT", f"/datasets/{DB}/prices", data=text.getvalue().encode(),
                             headers={"Content-Type": "text/csv"})  # fmt: skip
    assert loaded.status_code == 200 and loaded.json()["inserted"] == ROWS, loaded.text
    yield rows, optimum
    service.request("DELETE", f"/datasets/{DB}/prices")


def schema(service, **params):
    return service.get(f"/datasets/{DB}/prices/schema", params=params)


def test_a_measurement_is_inferred_as_a_regression_target_and_trains_as_it_is(service, measured):
    rows, optimum = measured
    answer = schema(service, label="y")
    assert answer.status_code == 200, answer.text
    inferred = answer.json()
    assert inferred == {
        "label": {"key": "y"},
        "features": [{"key": "x1"}, {"key": "x2"}, {"key": "c", "values": {"a": 0, "b": 1, "c": 2}}, {"key": "stars"}],
        "dropped": [],  # nothing left out (inference names each field it leaves out, and why)
    }
    assert schema(service, label="y", task="regression").json() == inferred
    job = {"name": "LinearRegressionWrapper", "inputCollection": f"{DB}.prices", "schema": inferred,
           "regParam": [0.001], "numFolds": 2}  # fmt: skip
    final, _ = service.train(job)
    assert final["status"] == "COMPLETED", final
    assert final["metrics"]["rmse"] <= optimum * 1.1, final["metrics"]
    records = [{k: v for k, v in row.items() if k != "y"} for row in rows[:200]]
    predicted = service.post("/predict/", json={"modelkey": final["model_key"], "records": records})
    assert predicted.status_code == 200, predicted.text
    errors = [p["prediction"] - row["y"] for p, row in zip(predicted.json()["predictions"], rows, strict=False)]
    assert (sum(e * e for e in errors) / len(errors)) ** 0.5 <= optimum * 1.3
    service.request("DELETE", f"/models/{final['model_key']}")


def test_task_overrides_the_labels_kind_both_ways(service, measured):
    assert schema(service, label="stars").json()["label"] == {"key": "stars"}  # a number: regression
    classes = schema(service, label="stars", task="classification")
    assert classes.status_code == 200, classes.text
    assert classes.json()["label"] == {"key": "stars", "values": {"1": 0, "2": 1, "3": 2}}
    refusals = [
        (dict(label="y", task="classification"), "invalid_schema", "not a whole number, so it cannot be a class"),
        (dict(label="c", task="regression"), "invalid_schema", "'c' holds text, and regression predicts a number"),
        (dict(label="y", task="both"), "invalid_request", "'task' must be 'classification' or 'regression'"),
    ]
    for params, code, message in refusals:
        answer = schema(service, **params)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == code and message in answer.json()["error"]["message"]
