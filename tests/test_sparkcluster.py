"""The service on a real Spark standalone cluster (localservers/sparkcluster.py): a master and a
worker started from the project's own pyspark in folders of their own, the executors in the
worker's work folder (not the project), every algorithm trained and scored there."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import E2E_BANK, JOB, known_rows, private_stack
from localservers.sparkcluster import start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = start_cluster(tmp_path_factory.mktemp("spark-cluster"), cores=2, memory="2g")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def on_cluster(tmp_path_factory, base_params, cluster, bank_over_http):
    stack = private_stack(tmp_path_factory, base_params, "on-cluster", 6, spark_master=cluster.url,
                          spark_executor_memory="1g", spark_read_partitions=2)  # fmt: skip
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def bank_model(on_cluster, bank_sample):
    # job.json on a one-point grid and two folds, on a ninth of the rows: the point is the cluster,
    # not the grid search (bank-full is scored below)
    final, _ = on_cluster.train({**JOB, "inputCollection": bank_sample, "numFolds": 2, "regParam": [0.01]})
    assert final["status"] == "COMPLETED", final
    return final


def test_the_bank_job_trains_on_the_cluster_as_well_as_locally(bank_model, cluster):
    assert bank_model["metrics"]["auc"] >= 0.85, bank_model["metrics"]  # 0.90 on all rows
    apps = [a for a in cluster.state()["activeapps"] if a["name"] == "prediction-service"]
    assert apps and apps[0]["cores"] >= 1 and apps[0]["state"] == "RUNNING", cluster.state()["activeapps"]


def test_the_executors_work_outside_the_project(bank_model, cluster):
    project = Path(__file__).resolve().parent.parent
    executor_dirs = [p for p in (cluster.folder / "work").glob("app-*/*") if p.is_dir()]
    assert executor_dirs, list((cluster.folder / "work").iterdir())
    assert all(project not in d.parents for d in executor_dirs)
    assert any((d / "predictionservice.zip").exists() for d in executor_dirs)  # what they import from


def test_predictall_of_bank_full_on_the_cluster(on_cluster, bank_model, mongo_client):
    body = {"modelkey": bank_model["model_key"], "inputCollection": E2E_BANK, "outputCollection": "cluster.bankResults"}
    answer = on_cluster.post("/predictall/", json=body)
    assert answer.status_code == 202, answer.text
    final, _ = on_cluster.wait_job(answer.json()["job_id"])
    assert final["status"] == "COMPLETED" and final["rows"] == 45209, final
    assert mongo_client["cluster"]["bankResults"].count_documents({}) == 45209
    mongo_client.drop_database("cluster")


@pytest.mark.parametrize(
    ("algorithm", "kind", "fields"),
    [
        ("RandomForestWrapper", "xor", {"numTrees": [10], "maxDepth": [5]}),
        ("LinearRegressionWrapper", "linear", {}),
        ("LogisticRegressionWrapper", "logistic", {}),
    ],
)
def test_every_algorithm_trains_and_scores_on_the_cluster(on_cluster, mongo_client, algorithm, kind, fields):
    rows, schema, _ = known_rows(kind, 1000, seed=3, classes=3)
    assert on_cluster.request("PUT", f"/datasets/cluster_{kind}/rows", json=rows).status_code == 200
    final, _ = on_cluster.train(
        {"name": algorithm, "inputCollection": f"cluster_{kind}.rows", "schema": schema, **fields}
    )
    assert final["status"] == "COMPLETED", final
    body = {
        "modelkey": final["model_key"],
        "inputCollection": f"cluster_{kind}.rows",
        "outputCollection": f"cluster_{kind}.out",
    }
    scored, _ = on_cluster.wait_job(on_cluster.post("/predictall/", json=body).json()["job_id"])
    assert scored["status"] == "COMPLETED" and scored["rows"] == 1000, scored
    mongo_client.drop_database(f"cluster_{kind}")
