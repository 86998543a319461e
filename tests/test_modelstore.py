"""modelstore.py: models as JSON strings plus the __versions__ hash, in a real Redis (db 9)."""

import json

import pytest

from predictionservice.modelstore import VERSIONS, ModelStore, detail


@pytest.fixture()
def store(redis_db):
    return ModelStore(redis_db)


def model(created_at, num_features=3, name="LogisticRegressionWrapper", **extra):
    return {
        "name": name,
        "created_at": created_at,
        "numFeatures": num_features,
        "coefficients": [0.5] * num_features,
        "intercept": -1.0,
        "metrics": {"auc": 0.9},
        **extra,
    }


def test_save_then_load_returns_the_model_and_its_version(store, redis_db):
    saved = model("2024-01-01T00:00:00Z")
    version = store.save("m1", saved)
    assert len(version) == 32 and int(version, 16) >= 0
    assert store.load("m1") == (saved, version)
    assert store.version("m1") == version
    assert json.loads(redis_db.get("m1")) == saved  # the classic layout: one JSON string per key
    assert redis_db.hget(VERSIONS, "m1").decode() == version


def test_load_and_version_of_an_unknown_key(store):
    assert store.load("nope") is None
    assert store.version("nope") is None


def test_the_version_changes_on_every_save(store):
    versions = [store.save("m1", model("2024-01-01T00:00:00Z", intercept=i)) for i in range(5)]
    assert len(set(versions)) == 5
    assert store.version("m1") == versions[-1]
    assert store.load("m1")[0]["intercept"] == 4


def test_delete_removes_the_model_and_its_version(store, redis_db):
    store.save("m1", model("2024-01-01T00:00:00Z"))
    store.save("m2", model("2024-01-02T00:00:00Z"))
    assert store.delete("m1") is True
    assert store.load("m1") is None and store.version("m1") is None
    assert redis_db.hkeys(VERSIONS) == [b"m2"]
    assert store.delete("m1") is False
    assert store.load("m2") is not None


def test_a_model_written_around_the_store_has_no_version(store, redis_db):
    redis_db.set("raw", json.dumps(model("2024-01-01T00:00:00Z")))
    loaded, version = store.load("raw")
    assert loaded["numFeatures"] == 3 and version is None


def test_keys_skip_the_versions_hash(store):
    for key in ("a", "b", "c"):
        store.save(key, model("2024-01-01T00:00:00Z"))
    assert sorted(store.keys()) == ["a", "b", "c"]


def test_keys_of_an_empty_store(store):
    assert list(store.keys()) == []
    assert store.summaries() == []


def test_summaries_are_newest_first_with_num_features(store):
    store.save("old", model("2023-05-01T10:00:00Z", num_features=2))
    store.save("new", model("2024-06-01T10:00:00Z", num_features=51))
    store.save("mid", model("2024-01-01T10:00:00Z", num_features=7, metrics={"auc": 0.7}))
    summaries = store.summaries()
    assert [s["model_key"] for s in summaries] == ["new", "mid", "old"]
    assert summaries[1] == {
        "model_key": "mid",
        "name": "LogisticRegressionWrapper",
        "created_at": "2024-01-01T10:00:00Z",
        "metrics": {"auc": 0.7},
        "num_features": 7,
        "description": None,
        "tags": [],
        "lineage": {"algorithm": "LogisticRegressionWrapper", "input_collection": None, "label": None, "task": None},
    }
    assert [s["num_features"] for s in summaries] == [51, 7, 2]


def test_a_model_without_created_at_sorts_last(store):
    store.save("dated", model("2024-01-01T00:00:00Z"))
    store.save("undated", {"name": "X", "numFeatures": 1})
    summaries = store.summaries()
    assert [s["model_key"] for s in summaries] == ["dated", "undated"]
    assert summaries[1]["created_at"] is None and summaries[1]["metrics"] is None
    assert summaries[1]["num_features"] == 1


def test_summaries_skip_values_that_are_not_json_or_not_strings(store, redis_db):
    store.save("good", model("2024-01-01T00:00:00Z"))
    redis_db.set("garbage", b"\xff\xfe not json")
    redis_db.set("truncated", b'{"name": "LogisticRegressionWrapper", ')
    redis_db.rpush("a_list", "x")  # MGET answers nil for a key that is not a string
    assert [s["model_key"] for s in store.summaries()] == ["good"]


@pytest.mark.parametrize("value", ["42", '"a string"', "[1, 2]", "null"])
def test_summaries_skip_json_values_that_are_not_objects(store, redis_db, value):
    store.save("good", model("2024-01-01T00:00:00Z"))
    redis_db.set("not_a_model", value)
    assert [s["model_key"] for s in store.summaries()] == ["good"]


def test_summaries_read_many_models_in_chunks(store, redis_db):
    with redis_db.pipeline() as pipe:
        for i in range(450):
            pipe.set(f"m{i:03d}", json.dumps(model(f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z", num_features=i)))
        pipe.execute()
    summaries = store.summaries()
    assert len(summaries) == 450
    assert summaries[0]["model_key"] == "m449" and summaries[-1]["model_key"] == "m000"
    assert [s["num_features"] for s in summaries] == list(range(449, -1, -1))


def test_the_stores_own_entries_are_no_model(store, redis_db):
    store.save("m", {"name": "x"})
    assert store.load(VERSIONS) is None and store.version(VERSIONS) is None
    assert store.delete(VERSIONS) is False
    assert redis_db.hget(VERSIONS, "m") is not None  # still there


def test_count_is_the_number_of_models(store, redis_db):
    assert store.count() == 0
    store.save("a", {"name": "x"})
    store.save("b", {"name": "y"})
    store.save("a", {"name": "x again"})
    assert store.count() == 2
    store.delete("a")
    assert store.count() == 1


BANK_SCHEMA = {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "age"}]}


def test_the_list_shows_description_tags_and_lineage_from_the_job_document(store):
    parameters = {"name": "LogisticRegressionWrapper", "inputCollection": "datasets.bank", "schema": BANK_SCHEMA,
                  "description": "who subscribes", "tags": ["bank", "demo"]}  # fmt: skip
    store.save("m", {**model("2024-01-01T00:00:00Z"), "schema": BANK_SCHEMA, "parameters": parameters})
    (listed,) = store.summaries()
    assert listed["description"] == "who subscribes" and listed["tags"] == ["bank", "demo"]
    assert listed["lineage"] == {
        "algorithm": "LogisticRegressionWrapper",
        "input_collection": "datasets.bank",
        "label": "y",
        "task": "binary classification",
    }
    regression = {**BANK_SCHEMA, "label": {"key": "balance"}}
    store.save("r", {**model("2023-01-01T00:00:00Z"), "schema": regression})
    assert store.summaries()[1]["lineage"]["task"] == "regression"


def test_one_spelling_num_features_whichever_spelling_a_model_was_stored_with():
    old = {**model("2024-01-01T00:00:00Z", num_features=4), "numClasses": 2, "schema": BANK_SCHEMA}
    new = {k: v for k, v in old.items() if k not in ("numFeatures", "numClasses")}
    new |= {"num_features": 4, "num_classes": 2}
    for stored in (old, new):
        shown = detail("k", stored)
        assert shown["num_features"] == 4 and shown["num_classes"] == 2
        assert "numFeatures" not in shown and "numClasses" not in shown
        assert shown["model_key"] == "k" and shown["lineage"]["label"] == "y"


def test_a_key_prefix_keeps_two_services_models_apart(redis_db):
    mine, theirs = ModelStore(redis_db, "a:"), ModelStore(redis_db, "b:")
    mine.save("m1", model("2024-01-01T00:00:00Z"))
    theirs.save("m2", model("2024-01-01T00:00:00Z"))
    assert [s["model_key"] for s in mine.summaries()] == ["m1"]
    assert mine.load("m2") is None and theirs.load("m2") is not None
    assert mine.version("m1") and theirs.version("m1") is None
    assert sorted(k.decode() for k in redis_db.keys("*")) == ["a:__versions__", "a:m1", "b:__versions__", "b:m2"]
    assert theirs.delete("m1") is False and mine.delete("m1") is True
