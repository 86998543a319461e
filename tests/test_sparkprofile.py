"""predictionservice/sparkprofile.py: the training profile every model is stored with, computed by
Spark as the algorithm's own train() runs (as on the worker): numeric quantile bins with the rows
counted in each, category frequencies, the score on the held-out rows. One small training per
algorithm on the session's Spark (one grid point, two folds, 400 known rows plus 3 invalid ones),
each profile checked against numpy on the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import Progress, known_rows
from LinearRegressionWrapper import LinearRegressionWrapper
from LogisticRegressionWrapper import LogisticRegressionWrapper
from modelfactory import ModelFactory, Resources
from predictionservice import monitor
from predictionservice.config import pick
from predictionservice.job import TrainingJob
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients, MongoTargets
from RandomForestWrapper import RandomForestWrapper

pytestmark = pytest.mark.system

CASES = [  # (algorithm, known_rows kind, classes, grid, the score's profile)
    (LogisticRegressionWrapper, "logistic", 2, {"regParam": [0.01]}, ("numeric", "probability")),
    (LinearRegressionWrapper, "linear", 0, {"regParam": [0.01]}, ("numeric", "prediction")),
    (RandomForestWrapper, "logistic", 3, {"numTrees": [5], "maxDepth": [3]}, ("categorical", "prediction")),
]


@pytest.mark.parametrize(("algorithm", "kind", "classes", "grid", "score"), CASES, ids=lambda c: getattr(c, "name", ""))
def test_every_algorithm_stores_its_training_profile(spark, base_params, mongo_db, redis_db, algorithm, kind, classes,
                                                     grid, score):  # fmt: skip
    rows, schema, _ = known_rows(kind, 400, seed=11 + classes, classes=max(classes, 2))
    # the categorical is skewed (a: 60 %), and 3 rows are invalid: left out of the profile
    rows = [{**r, "c": "a"} if i % 5 < 2 else r for i, r in enumerate(rows)]
    mongo_db.rows.insert_many([dict(r) for r in rows] + [{**r, "x2": None} for r in rows[:3]])
    document = {"name": algorithm.name, "inputCollection": f"{mongo_db.name}.rows", "schema": schema, "numFolds": 2,
                **grid}  # fmt: skip
    job = TrainingJob.from_document(
        document, ModelFactory([algorithm.name]).algorithm_class, pick(MongoTargets, base_params).resolve
    )
    resources = Resources(base_params, ModelStore(redis_db), MongoClients(), lambda: spark)
    algorithm().train(job, resources, Progress("profiled"))
    stored, _ = ModelStore(redis_db).load("profiled")
    profile = stored["profile"]

    assert profile["rows"] == len(rows) and profile["bins"] == base_params["profile_bins"] == 10
    assert list(profile["features"]) == ["x1", "x2", "c"]
    for key in ("x1", "x2"):
        feature = profile["features"][key]
        values = np.array([r[key] for r in rows])
        assert feature["kind"] == "numeric" and len(feature["edges"]) == 9
        deciles = np.quantile(values, np.arange(1, 10) / 10)
        assert np.abs(np.array(feature["edges"]) - deciles).max() < 0.02  # x is uniform on [-1, 1]
        counts, missing = monitor.binned(feature, values.tolist())
        assert feature["counts"] == counts.tolist() and missing == 0  # the same bins as the monitor's
        assert max(feature["counts"]) - min(feature["counts"]) <= 4
    category = profile["features"]["c"]
    truth = {name: sum(r["c"] == name for r in rows) for name in ("a", "b", "c")}
    ranked = sorted(truth, key=lambda name: (-truth[name], name))  # most frequent first
    assert category["kind"] == "categorical" and category["bins"] == [*ranked, "(other)"]
    assert category["counts"] == [truth[name] for name in ranked] + [0]
    assert category["values"] == {name: i for i, name in enumerate(ranked)}

    kind_of, of = score
    assert (profile["score"]["kind"], profile["score"]["of"]) == (kind_of, of)
    assert sum(profile["score"]["counts"]) == profile["heldout_rows"] == stored["training"]["holdout_rows"] > 0
    if kind_of == "categorical":
        assert profile["score"]["bins"] == ["c0", "c1", "c2"]
    elif of == "probability":
        assert profile["score"]["edges"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_top_categories_keep_the_most_frequent_and_count_the_rest_as_other():
    from predictionservice.sparkprofile import categorical

    values = {"x": 0, "y": 1, "z": 2, "w": 3, "alias-of-y": 1}
    found = categorical(values, {0: 5, 1: 50, 2: 20, 3: 1}, top=2)
    assert found["bins"] == ["alias-of-y/y", "z", "(other)"]
    assert found["counts"] == [50, 20, 6]
    assert found["values"] == {"y": 0, "alias-of-y": 0, "z": 1}
    counts, missing = monitor.binned(found, ["y", "alias-of-y", "z", "x", "never-seen", None, 3.5])
    assert counts.tolist() == [2, 1, 2] and missing == 2  # None and 3.5 are no category
