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
    assert stored["feature_stds"] == pytest.approx(encoded.std(axis=0, ddof=1).tolist(), rel=1e-9, abs=1e-12)

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


# ------------------------------------------------------------------ /predictall/ with explain


def stored_models() -> dict[str, tuple[dict, list[dict]]]:
    """Stored models of each algorithm and task, as training stores them, with the rows they
    score: linear ones from random coefficients with training means, forests fitted by
    scikit-learn in the stored layout (tests/test_treeshap.py), so no Spark training is needed."""
    from test_predictors_explanations import stored
    from test_treeshap import fitted

    models = {kind: stored(kind, classes, seed=7) for kind, classes in (("binary", 2), ("multiclass", 3))}
    models["regression"] = stored("regression", seed=7)
    for kind, rows_kind, classes in (("forest", "logistic", 3), ("forest_regression", "wave", 0)):
        rows, parser, trees = fitted(rows_kind, 300, classes, trees=10, depth=5)
        models[kind] = ({"name": "RandomForestWrapper", "schema": parser.schema(), "trees": trees}, rows)
    return models


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "forest", "forest_regression"])
def test_predictall_with_explain_writes_online_explanations_beside_each_score(
    spark, base_params, mongo_db, redis_db, kind
):
    """Batch equals online to 1e-9: each written document's explanation is what /predict/'s
    predictor answers for its record, beside the same score; a row that cannot be scored is
    skipped as without explain; the written value keeps the input, no more."""
    from predictionservice.job import ScoringJob

    model, rows = stored_models()[kind]
    documents = [{"_id": f"r{i}", **row} for i, row in enumerate(rows)]
    mongo_db.rows.insert_many([*documents, {"_id": "bad", **{**rows[0], "x1": "abc"}}])
    algorithm = ModelFactory([model["name"]]).algorithm(model["name"])
    job = ScoringJob.from_document(
        {
            "modelkey": kind,
            "inputCollection": f"{mongo_db.name}.rows",
            "outputCollection": f"{mongo_db.name}.scored",
            "explain": True,
        },
        pick(MongoTargets, base_params).resolve,
    )
    resources = Resources(base_params, ModelStore(redis_db), MongoClients(), lambda: spark)
    report = algorithm.predict_all(model, job, resources, Progress())
    assert report["rows"] == len(rows) and report["invalid_rows"] == 1
    predictor = algorithm.compile(model)
    online = predictor.explanations(rows)
    answers = predictor.predict(rows)
    written = {doc["value"]["_id"]: doc for doc in mongo_db.scored.find()}
    assert len(written) == len(rows)
    for i, (explanation, answer) in enumerate(zip(online, answers, strict=True)):
        doc = written[f"r{i}"]
        assert set(doc["value"]) == set(documents[i])  # the input, without the slots it carried
        assert doc["explanation"]["output"] == explanation["output"]
        assert doc["explanation"]["base"] == pytest.approx(explanation["base"], abs=1e-9)
        assert doc["explanation"]["contributions"] == pytest.approx(explanation["contributions"], abs=1e-9)
        assert doc["score"] == pytest.approx(answer["prediction"], abs=1e-9)  # Spark sums in its own order
