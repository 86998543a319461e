"""modelfactory.py: the algorithm allowlist (nothing else is imported) and, through it, the
compiled-model cache (predictionservice/predictorcache.py),
against a real model store (Redis db 9) and the real LogisticRegressionWrapper predictor."""

import json
import math
import sys
import uuid

import pytest

from LogisticRegressionWrapper import LogisticRegressionWrapper
from modelfactory import ModelFactory
from predictionservice.exceptions import NotFound, UnknownAlgorithm
from predictionservice.modelstore import ModelStore
from predictionservice.predictorcache import PredictorCache
from predictionservice.predictors import LinearClassifier

ALLOWED = ["LogisticRegressionWrapper"]
SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x"}, {"key": "c", "values": {"a": 0, "b": 1}}],
}
RECORD = {"x": 1.0, "c": "b"}  # encodes as [1, 0, 1]


def stored_model(coefficients, intercept, name="LogisticRegressionWrapper"):
    return {
        "name": name,
        "schema": SCHEMA,
        "coefficients": coefficients,
        "intercept": intercept,
        "numFeatures": 3,
        "numClasses": 2,
    }


def sigmoid(margin):
    return 1.0 / (1.0 + math.exp(-margin))


@pytest.fixture()
def store(redis_db):
    return ModelStore(redis_db)


@pytest.fixture()
def canary(tmp_path, monkeypatch):
    """A module (name, marker path) that leaves a marker file when it is imported."""
    name = f"canary_{uuid.uuid4().hex}"
    marker = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\nclass {name}:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)


@pytest.fixture()
def canary_package(tmp_path, monkeypatch):
    """A package whose __init__ leaves a marker when imported, with a submodule 'sub'."""
    name = f"canarypkg_{uuid.uuid4().hex}"
    marker = tmp_path / "package-imported"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    (package / "sub.py").write_text("class sub:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(f"{name}.sub", None)
    sys.modules.pop(name, None)


# ------------------------------------------------------------------------------ allowlist


def test_check_returns_an_offered_name():
    assert ModelFactory(ALLOWED).check("LogisticRegressionWrapper") == "LogisticRegressionWrapper"


def test_a_name_outside_the_allowlist_is_refused_before_anything_is_imported(canary):
    name, marker = canary
    factory = ModelFactory(ALLOWED)
    with pytest.raises(UnknownAlgorithm) as caught:
        factory.check(name)
    assert caught.value.message == (
        f"algorithm '{name}' is not offered by this server (offered: LogisticRegressionWrapper)"
    )
    assert caught.value.status == 400
    with pytest.raises(UnknownAlgorithm):
        factory.algorithm_class(name)
    with pytest.raises(UnknownAlgorithm):
        factory.algorithm(name)
    assert name not in sys.modules
    assert not marker.exists()


def test_the_canary_does_leave_its_mark_when_it_is_offered(canary):
    """The control of the test above: an allowed name is imported, and that is visible."""
    name, marker = canary
    factory = ModelFactory([name])
    cls = factory.algorithm_class(name)
    assert cls.__name__ == name and cls.__module__ == name
    assert marker.read_text() == "imported"
    assert name in sys.modules
    assert factory.algorithm_class(name) is cls  # resolved once


def test_a_dotted_name_is_refused_even_when_listed_and_nothing_is_imported(canary_package):
    package, marker = canary_package
    dotted = f"{package}.sub"
    factory = ModelFactory([dotted])
    with pytest.raises(UnknownAlgorithm) as caught:
        factory.algorithm_class(dotted)
    assert caught.value.message == f"algorithm '{dotted}' is not offered by this server (offered: {dotted})"
    assert package not in sys.modules and dotted not in sys.modules
    assert not marker.exists()


# Listed, yet refused: none of these is an identifier (a module name this factory could import).
LISTED_NON_IDENTIFIERS = ["1abc", "a b", "x" * 101, "os.path", "../x", "LogisticRegressionWrapper\n", "Logistic "]


@pytest.mark.parametrize(
    "name", [None, 5, ["LogisticRegressionWrapper"], "", "os", "sys", *LISTED_NON_IDENTIFIERS], ids=repr
)
def test_names_that_are_not_offered_identifiers_are_refused(name):
    allowed = [*ALLOWED, *LISTED_NON_IDENTIFIERS]
    with pytest.raises(UnknownAlgorithm) as caught:
        ModelFactory(allowed).check(name)
    assert caught.value.message == (f"algorithm {name!r} is not offered by this server (offered: {', '.join(allowed)})")


def test_an_empty_allowlist_offers_none():
    with pytest.raises(UnknownAlgorithm) as caught:
        ModelFactory([]).check("LogisticRegressionWrapper")
    assert caught.value.message == "algorithm 'LogisticRegressionWrapper' is not offered by this server (offered: none)"


def test_algorithm_class_imports_an_allowed_name():
    factory = ModelFactory(ALLOWED)
    assert factory.algorithm_class("LogisticRegressionWrapper") is LogisticRegressionWrapper
    assert isinstance(factory.algorithm("LogisticRegressionWrapper"), LogisticRegressionWrapper)


# -------------------------------------------------------------------------- predictor cache


def test_the_cache_compiles_the_stored_model(store):
    store.save("m1", stored_model([1.0, 2.0, -1.0], 0.5))
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    predictor = cache.get("m1")
    assert isinstance(predictor, LinearClassifier)
    [result] = predictor.predict([RECORD])
    assert result["prediction"] == 1 and result["label"] == "yes"
    assert result["probability"] == pytest.approx(sigmoid(1.0 - 1.0 + 0.5), rel=1e-12)
    assert cache.get("m1").predict([RECORD, {"x": -3, "c": "a"}]) == [
        result,
        {
            "prediction": 0,
            "label": "no",
            "probability": pytest.approx(sigmoid(-3.0 + 2.0 + 0.5), rel=1e-12),
            "probabilities": {
                "no": pytest.approx(1 - sigmoid(-3.0 + 2.0 + 0.5), rel=1e-12),
                "yes": pytest.approx(sigmoid(-3.0 + 2.0 + 0.5), rel=1e-12),
            },
        },
    ]


def test_the_cache_caches_the_compiled_predictor(store):
    store.save("m1", stored_model([1.0, 2.0, -1.0], 0.5))
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    assert cache.get("m1") is cache.get("m1")


def test_the_cache_rereads_after_the_stored_version_changes(store):
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    store.save("m1", stored_model([1.0, 2.0, -1.0], 0.5))
    first = cache.get("m1")
    assert first.predict([RECORD])[0]["prediction"] == 1
    store.save("m1", stored_model([-1.0, 0.0, 0.0], 0.0))  # same key, other coefficients
    second = cache.get("m1")
    assert second is not first
    [result] = second.predict([RECORD])
    assert result["prediction"] == 0 and result["label"] == "no"
    assert result["probability"] == pytest.approx(sigmoid(-1.0), rel=1e-12)
    assert cache.get("m1") is second


def test_the_cache_raises_not_found_after_delete(store):
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    store.save("m1", stored_model([1.0, 2.0, -1.0], 0.5))
    cache.get("m1")
    assert store.delete("m1") is True
    with pytest.raises(NotFound) as caught:
        cache.get("m1")
    assert caught.value.message == "model 'm1' not found" and caught.value.status == 404
    with pytest.raises(NotFound):
        cache.get("m1").predict([RECORD])


def test_the_cache_of_an_unknown_key_is_not_found(store):
    with pytest.raises(NotFound) as caught:
        PredictorCache(ModelFactory(ALLOWED), store).get("nope")
    assert caught.value.message == "model 'nope' not found"


def test_a_model_without_a_version_is_served_but_never_cached(store, redis_db):
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    redis_db.set("raw", json.dumps(stored_model([1.0, 2.0, -1.0], 0.5)))
    first = cache.get("raw")
    assert first.predict([RECORD])[0]["prediction"] == 1
    second = cache.get("raw")
    assert second is not first
    redis_db.set("raw", json.dumps(stored_model([-1.0, 0.0, 0.0], 0.0)))  # rewritten around the store
    assert cache.get("raw").predict([RECORD])[0]["prediction"] == 0


def test_the_cache_keeps_the_most_recently_used_models(store):
    cache = PredictorCache(ModelFactory(ALLOWED), store, size=2)
    for key in ("a", "b", "c"):
        store.save(key, stored_model([1.0, 2.0, -1.0], 0.5))
    a = cache.get("a")
    b = cache.get("b")
    assert cache.get("a") is a  # a is now the most recent
    cache.get("c")  # evicts b
    assert cache.get("a") is a
    assert cache.get("b") is not b


def test_a_stored_model_naming_an_algorithm_not_offered_is_refused_without_import(store, canary):
    name, marker = canary
    store.save("evil", stored_model([1.0, 2.0, -1.0], 0.5, name=name))
    with pytest.raises(UnknownAlgorithm):
        PredictorCache(ModelFactory(ALLOWED), store).get("evil")
    assert name not in sys.modules and not marker.exists()


def test_the_cache_counts_its_hits_and_misses(store):
    store.save("m1", stored_model([1.0, 2.0, -1.0], 0.5))
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    cache.get("m1")
    cache.get("m1")
    cache.get("m1")
    with pytest.raises(NotFound):
        cache.get("nope")
    store.save("m1", stored_model([1.0, 2.0, -1.0], 0.25))  # a new version: read again
    cache.get("m1")
    assert (cache.hits, cache.misses) == (2, 3)


def test_a_compiled_predictor_names_its_algorithm(store):
    store.save("m1", stored_model([1.0, 2.0, -1.0], 0.5))
    assert PredictorCache(ModelFactory(ALLOWED), store).get("m1").algorithm == "LogisticRegressionWrapper"


class Progress:
    """What Algorithm.predict_all reports to (the worker's MessageHandler): the steps, kept."""

    def __init__(self) -> None:
        self.job_id = f"test-{uuid.uuid4().hex[:8]}"
        self.steps: list[str] = []

    def progress(self, message: str, progress: float) -> None:
        self.steps.append(message)


def test_scoring_an_empty_or_missing_input_is_not_found_and_leaves_the_output(spark, base_params, mongo_db, store):
    """The worker learns that its input is empty from the schema Spark infers (its sample found
    no document), not from a find_one of its own: the POST checked already, and on SecantusDB a
    find_one reads the whole collection."""
    from modelfactory import Resources
    from predictionservice.config import pick
    from predictionservice.job import ScoringJob
    from predictionservice.mongotarget import MongoClients, MongoTargets

    mongo_db.out.insert_one({"keep": 1})
    mongo_db.create_collection("empty")
    resources = Resources(base_params, store, MongoClients(), lambda: spark)
    for name in ("empty", "missing"):
        document = {
            "modelkey": "m1",
            "inputCollection": f"{mongo_db.name}.{name}",
            "outputCollection": f"{mongo_db.name}.out",
        }
        job = ScoringJob.from_document(document, pick(MongoTargets, base_params).resolve)
        with pytest.raises(NotFound, match="is empty or does not exist"):
            LogisticRegressionWrapper().predict_all(stored_model([1.0, 2.0, -1.0], 0.5), job, resources, Progress())
    assert list(mongo_db.out.find({}, {"_id": 0})) == [{"keep": 1}]
    assert set(mongo_db.list_collection_names()) == {"empty", "out"}  # no temporary collection left


def test_training_on_an_input_changed_since_the_post_fails_naming_why(spark, base_params, mongo_db, store):
    """Issue 16: the worker asks the collection why only when no row of its read could be used
    (the POST checked the fields already, and on SecantusDB a find_one reads the whole
    collection); the failure still says which field is gone, or that the input is empty."""
    from modelfactory import Resources
    from predictionservice.config import pick
    from predictionservice.exceptions import InvalidSchema
    from predictionservice.job import TrainingJob
    from predictionservice.mongotarget import MongoClients, MongoTargets

    mongo_db.create_collection("empty")
    mongo_db.nolabel.insert_many([{"x": i, "c": "a"} for i in range(20)])
    mongo_db.nofeature.insert_many([{"x": i, "y": ["no", "yes"][i % 2]} for i in range(20)])
    resources = Resources(base_params, store, MongoClients(), lambda: spark)
    expected = {
        "empty": (NotFound, "is empty or does not exist"),
        "missing": (NotFound, "is empty or does not exist"),
        "nolabel": (InvalidSchema, "label field 'y' not found in"),
        "nofeature": (InvalidSchema, "feature field 'c' not found in"),
    }
    for name, (error, message) in expected.items():
        document = {"name": "LogisticRegressionWrapper", "inputCollection": f"{mongo_db.name}.{name}", "schema": SCHEMA}
        job = TrainingJob.from_document(
            document, ModelFactory(ALLOWED).algorithm_class, pick(MongoTargets, base_params).resolve
        )
        with pytest.raises(error, match=message):
            LogisticRegressionWrapper().train(job, resources, Progress())
    assert spark.sparkContext._jsc.sc().getPersistentRDDs().size() == 0  # nothing left cached
