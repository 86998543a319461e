"""modelfactory.py's training, what explanations need (docs/API.md, "Explanations"): a linear
model is stored with ``feature_means``, the mean of each encoded column over the valid training
rows, computed by Spark on the worker; the model trained for real then explains a whole data set
with base + contributions equal to its output, computed here in numpy from the stored
coefficients. One small training per task on the session's Spark (one grid point, two folds)."""

from __future__ import annotations

import numpy as np
import pytest

from dataparser import DataParser
from helpers import Progress, known_rows
from LinearRegressionWrapper import LinearRegressionWrapper
from LogisticRegressionWrapper import LogisticRegressionWrapper
from modelfactory import ModelFactory, Resources
from predictionservice.config import pick
from predictionservice.job import TrainingJob
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients, MongoTargets

pytestmark = pytest.mark.system

ALGORITHMS = {
    "LogisticRegressionWrapper": LogisticRegressionWrapper,
    "LinearRegressionWrapper": LinearRegressionWrapper,
}
CASES = [  # (known_rows kind, classes, algorithm, the explained output)
    ("logistic", 2, "LogisticRegressionWrapper", "margin"),
    ("logistic", 3, "LogisticRegressionWrapper", "margin"),
    ("linear", 0, "LinearRegressionWrapper", "value"),
]


def trained(spark, base_params, mongo_db, redis_db, kind: str, classes: int, name: str) -> tuple[dict, list[dict]]:
    """A model trained by the algorithm's own train() on 300 known rows plus 3 with a field
    missing (not valid: left out of the means), as the worker trains it; and the valid rows."""
    rows, schema, _ = known_rows(kind, 300, seed=classes + 5, classes=max(classes, 2))
    bad = [{**row, "x2": None} for row in rows[:3]]
    mongo_db.rows.insert_many([dict(row) for row in rows + bad])
    document = {
        "name": name,
        "inputCollection": f"{mongo_db.name}.rows",
        "schema": schema,
        "regParam": [0.01],
        "numFolds": 2,
    }
    job = TrainingJob.from_document(
        document, ModelFactory([name]).algorithm_class, pick(MongoTargets, base_params).resolve
    )
    resources = Resources(base_params, ModelStore(redis_db), MongoClients(), lambda: spark)
    model = ALGORITHMS[name]().train(job, resources, Progress(f"explain-{classes}"))
    assert model["training"]["invalid_rows"] == 3
    stored, _ = ModelStore(redis_db).load(f"explain-{classes}")
    return stored, rows


@pytest.mark.parametrize(("kind", "classes", "name", "output"), CASES)
def test_a_trained_linear_model_keeps_its_training_means_and_explains_additively(
    spark, base_params, mongo_db, redis_db, kind, classes, name, output
):
    stored, rows = trained(spark, base_params, mongo_db, redis_db, kind, classes, name)
    encoded = DataParser(stored["schema"]).encode(rows)  # the valid rows, encoded as online scoring does
    assert len(stored["feature_means"]) == encoded.shape[1] == stored["num_features"]
    assert stored["feature_means"] == pytest.approx(encoded.mean(axis=0).tolist(), rel=1e-9, abs=1e-12)

    if "coefficient_matrix" in stored:
        weights, intercepts = np.asarray(stored["coefficient_matrix"]), np.asarray(stored["intercepts"])
    else:
        weights, intercepts = np.asarray([stored["coefficients"]]), np.asarray([stored["intercept"]])
    margins = encoded @ weights.T + intercepts
    chosen = margins.argmax(axis=1) if classes > 2 else np.zeros(len(rows), dtype=int)
    explanations = ALGORITHMS[name]().compile(stored).explanations(rows)
    means = np.asarray(stored["feature_means"])
    for i, explanation in enumerate(explanations):
        k = chosen[i]
        assert explanation["output"] == output
        assert explanation["base"] + sum(explanation["contributions"].values()) == pytest.approx(
            margins[i, k], abs=1e-9
        )
        assert explanation["base"] == pytest.approx(intercepts[k] + weights[k] @ means, abs=1e-12)
        part = weights[k] * (encoded[i] - means)
        expected = {"x1": part[0], "x2": part[1], "c": part[2:].sum()}  # c's three one-hot columns
        assert explanation["contributions"] == pytest.approx(expected, abs=1e-12)
