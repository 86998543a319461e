"""predictionservice/models.py, the core's stored-model operations, called with no Flask app on
a model store in the session's redis-server: listed, shown, deleted, and NotFound in the API's
words for a model that is not there."""

from __future__ import annotations

import pytest

from predictionservice.exceptions import NotFound
from predictionservice.models import Models
from predictionservice.modelstore import ModelStore

MODEL = {
    "name": "LinearRegressionWrapper",
    "schema": {"label": {"key": "y"}, "features": [{"key": "x"}]},
    "coefficients": [2.0],
    "intercept": 0.5,
    "numFeatures": 1,
    "parameters": {"inputCollection": "d.c", "tags": ["t"]},
}


@pytest.fixture()
def models(redis_db):
    store = ModelStore(redis_db)
    store.save("m1", MODEL)
    return Models(store)


def test_a_stored_model_is_listed_shown_and_deleted(models):
    (listed,) = models.listing()
    assert listed["model_key"] == "m1" and listed["tags"] == ["t"] and listed["lineage"]["input_collection"] == "d.c"
    assert models.stored("m1") == MODEL
    shown = models.show("m1")
    assert shown["num_features"] == 1 and "numFeatures" not in shown and shown["coefficients"] == [2.0]
    models.delete("m1")
    assert models.listing() == []
    with pytest.raises(NotFound, match="model 'm1' not found"):
        models.show("m1")
    with pytest.raises(NotFound, match="model 'm1' not found"):
        models.delete("m1")


def test_a_long_key_is_clipped_in_the_message(models):
    with pytest.raises(NotFound) as missing:
        models.stored("k" * 500)
    assert missing.value.message == f"model '{'k' * 99}... (500 characters) not found"
