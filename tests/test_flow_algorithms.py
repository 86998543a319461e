"""Every algorithm end to end over HTTP, on data with a known answer: uploaded, trained by a real
worker with Spark, scored online by /predict/ and in batch by /predictall/. Quality is held
against the known optimum of the data (the Bayes accuracy, the noise's RMSE), never against a
recorded figure."""

from __future__ import annotations

import math

import pytest

from helpers import Service, known_rows

DB = "algorithms"
# name -> (algorithm, rows kind, classes, grid and other fields)
RUNS = {
    "multiclass": ("LogisticRegressionWrapper", "logistic", 5, {"regParam": [0.001]}),
    "linear": ("LinearRegressionWrapper", "linear", 0, {"regParam": [0.001]}),
    "xor_forest": ("RandomForestWrapper", "xor", 2, {"numTrees": [30], "maxDepth": [6]}),
    "xor_linear": ("LogisticRegressionWrapper", "xor", 2, {"regParam": [0.001]}),
    "wave_forest": ("RandomForestWrapper", "wave", 0, {"numTrees": [30], "maxDepth": [8]}),
    "wave_linear": ("LinearRegressionWrapper", "wave", 0, {"regParam": [0.001]}),
}


@pytest.fixture(scope="module")
def trained(service):
    """Each run's data uploaded through the API and trained once: name -> (status, rows, optimum)."""
    out = {}
    datasets = {}
    for name, (algorithm, kind, classes, fields) in RUNS.items():
        if kind not in datasets:
            rows, schema, optimum = known_rows(kind, 3000, seed=11, classes=max(classes, 2))
            answer = service.request("PUT", f"/datasets/{DB}/{kind}", json=rows)
            assert answer.status_code == 200, answer.text
            datasets[kind] = (rows, schema, optimum)
        rows, schema, optimum = datasets[kind]
        final, _ = service.train({"name": algorithm, "inputCollection": f"{DB}.{kind}", "schema": schema, **fields})
        assert final["status"] == "COMPLETED", final
        out[name] = (final, rows, optimum)
    yield out
    for name in out:
        service.request("DELETE", f"/models/{out[name][0]['model_key']}")
    for kind in datasets:
        service.request("DELETE", f"/datasets/{DB}/{kind}")


def predict(service, key, records):
    answer = service.post("/predict/", json={"modelkey": key, "records": records})
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def test_five_classes_answer_every_class_summing_to_one_and_the_likeliest_label(service, trained):
    final, rows, optimum = trained["multiclass"]
    assert set(final["metrics"]) == {"accuracy", "f1", "log_loss"}
    assert final["metrics"]["accuracy"] >= optimum - 0.05, (final["metrics"], optimum)
    assert final["message"].startswith(f"model {final['model_key']} trained: held-out accuracy")
    for answer in predict(service, final["model_key"], [{k: v for k, v in r.items() if k != "y"} for r in rows[:50]]):
        probabilities = answer["probabilities"]
        assert set(probabilities) == {f"c{i}" for i in range(5)}
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-12)
        assert answer["label"] == max(probabilities, key=probabilities.get) == f"c{answer['prediction']}"
        assert answer["probability"] == probabilities[answer["label"]]


def test_linear_regression_reaches_the_noise_floor(service, trained):
    final, _rows, noise = trained["linear"]
    assert set(final["metrics"]) == {"rmse", "mae", "r2"}
    assert final["metrics"]["rmse"] <= noise * 1.15 and final["metrics"]["r2"] >= 0.9, final["metrics"]
    [answer] = predict(service, final["model_key"], [{"x1": 0.5, "x2": -0.5, "c": "b"}])
    assert set(answer) == {"prediction"}
    assert answer["prediction"] == pytest.approx(3 * 0.5 + 2 * 0.5 + 1.5, abs=0.2)  # the known model


def test_a_forest_beats_a_line_where_no_line_fits(service, trained):
    forest, _, optimum = trained["xor_forest"]
    line, _, _ = trained["xor_linear"]
    assert forest["metrics"]["accuracy"] >= optimum - 0.05, forest["metrics"]
    assert line["metrics"]["accuracy"] <= 0.65 and line["metrics"]["auc"] <= 0.65, line["metrics"]
    wave, _, _noise = trained["wave_forest"]
    flat, _, _ = trained["wave_linear"]
    assert wave["metrics"]["rmse"] <= 0.5 * flat["metrics"]["rmse"], (wave["metrics"], flat["metrics"])
    stored = service.get(f"/models/{wave['model_key']}").json()
    assert stored["task"] == "regression" and len(stored["trees"]) == 30
    importances = stored["feature_importances"]
    assert importances["x1"] > importances["c"] and importances["x2"] > importances["c"]  # c plays no part


@pytest.mark.parametrize("name", ["multiclass", "xor_forest", "wave_forest", "linear"])
def test_predictall_writes_what_predict_answers(service, trained, mongo_client, name):
    final, rows, _ = trained[name]
    kind = RUNS[name][1]
    job = {"modelkey": final["model_key"], "inputCollection": f"{DB}.{kind}", "outputCollection": f"{DB}.{name}_out"}
    answer = service.post("/predictall/", json=job)
    assert answer.status_code == 202, answer.text
    status, _ = service.wait_job(answer.json()["job_id"], path="/predictall/status/")
    assert status["status"] == "COMPLETED" and status["rows"] == len(rows), status
    written = list(mongo_client[DB][f"{name}_out"].find({}, {"_id": 0}).limit(40))
    online = predict(service, final["model_key"], [{k: d["value"][k] for k in ("x1", "x2", "c")} for d in written])
    for document, expected in zip(written, online, strict=True):
        assert document["score"] == pytest.approx(expected["prediction"], rel=1e-9)
        if "label" in expected:
            assert document["label"] == expected["label"]
            assert document["probability"] == pytest.approx(expected["probability"], rel=1e-9)
            assert document["probabilities"] == pytest.approx(expected["probabilities"], rel=1e-9)
        else:
            assert document["prediction"] == pytest.approx(expected["prediction"], rel=1e-9)
    mongo_client[DB].drop_collection(f"{name}_out")


@pytest.mark.parametrize(
    ("algorithm", "kind", "extra", "problem"),
    [
        ("LogisticRegressionWrapper", "linear", {}, "LogisticRegressionWrapper does binary classification or multi"),
        ("LinearRegressionWrapper", "xor", {}, "LinearRegressionWrapper does regression"),
        ("LogisticRegressionWrapper", "xor", {"numTrees": [10]}, "unknown field(s): 'numTrees'"),
        ("RandomForestWrapper", "xor", {"elasticNetParam": [0.5]}, "unknown field(s): 'elasticNetParam'"),
    ],
)
def test_a_job_its_algorithm_cannot_run_is_refused_at_submission(service, trained, algorithm, kind, extra, problem):
    _, schema, _ = known_rows(kind, 5)
    answer = service.post(
        "/train/", json={"name": algorithm, "inputCollection": f"{DB}.{kind}", "schema": schema, **extra}
    )
    assert answer.status_code == 400, answer.text
    assert problem in answer.json()["error"]["message"]


def test_a_model_is_scored_after_the_web_process_restarts(service, trained, tmp_path_factory):
    final, rows, _ = trained["xor_forest"]
    records = [{k: r[k] for k in ("x1", "x2", "c")} for r in rows[:20]]
    before = predict(service, final["model_key"], records)
    for attempt in range(2):  # a web process of its own, started twice: nothing cached survives
        web = Service(tmp_path_factory.mktemp(f"restart{attempt}"), service.params, worker=False)
        try:
            assert predict(web, final["model_key"], records) == before
        finally:
            web.stop()
    assert all(not math.isnan(a["probability"]) for a in before)
