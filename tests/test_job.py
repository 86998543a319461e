"""predictionservice/job.py: a job is checked, completed and resolved once, from its document;
what it shows holds no credentials; its Celery message rebuilds the same job, and a plain
document queued by the previous version is still read. No server: the collections resolve
against the built-in settings."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from LinearRegressionWrapper import LinearRegressionWrapper
from LogisticRegressionWrapper import LogisticRegressionWrapper
from modelfactory import ModelFactory
from predictionservice.config import load_parameters, pick
from predictionservice.defaults import JOB_DEFAULTS
from predictionservice.exceptions import ForbiddenTarget, InvalidRequest, InvalidSchema, ServiceError, UnknownAlgorithm
from predictionservice.job import MESSAGE_FORMAT, ScoringJob, TrainingJob
from predictionservice.mongotarget import MongoTargets

pytestmark = pytest.mark.unit

PARAMS = load_parameters(environ={}, overrides={"mongodb_uri": "mongodb://db.internal:27017/"})
FACTORY = ModelFactory(PARAMS["algorithms"])
SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x"}, {"key": "c", "values": {"a": 0}}],
}
SECRET_URI = "mongodb://alice:s3cret@db.internal:27017/shop.orders?authSource=admin"
DOCUMENT = {
    "name": "LogisticRegressionWrapper",
    "inputCollection": SECRET_URI,
    "outputCollection": "shop.results",
    "schema": SCHEMA,
    "regParam": [0.5],
    "description": "orders",
    "tags": ["weekly"],
}
SCORING = {"modelkey": "a" * 32, "inputCollection": SECRET_URI, "outputCollection": "shop.scored"}


def resolver(spec, field):
    return pick(MongoTargets, PARAMS).resolve(spec, field)


def training(document=DOCUMENT, algorithms=FACTORY.algorithm_class) -> TrainingJob:
    return TrainingJob.from_document(copy.deepcopy(document), algorithms, resolver)


def refused(build) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        build()
    return caught.value


# ---------------------------------------------------------------------------------- checked


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"inputCollection": None}, InvalidRequest, "needs the field 'inputCollection'"),
        ({"numTrees": [3]}, InvalidRequest, "'numTrees' was unexpected"),  # the forest's field, not this algorithm's
        ({"regParam": "0.1"}, InvalidRequest, "regParam"),
        ({"schema": {**SCHEMA, "label": {"key": "y"}}}, InvalidSchema, "schema.label 'y' is a numeric label"),
        ({"inputCollection": "mongodb://h.example:1/db.c"}, ForbiddenTarget, "'inputCollection'"),
        ({"outputCollection": "shop.system.x"}, InvalidRequest, "collection name 'system.x' is not allowed"),
    ],
)
def test_a_document_is_refused_with_a_4xx_naming_the_field(change, error, words):
    document = {k: v for k, v in {**DOCUMENT, **change}.items() if v is not None}
    exc = refused(lambda: training(document))
    assert isinstance(exc, error) and 400 <= exc.status < 500, exc
    assert words in exc.message, exc.message


def test_the_schema_label_problem_is_named_in_the_details():
    exc = refused(lambda: training({**DOCUMENT, "schema": {**SCHEMA, "label": {"key": "y"}}}))
    assert exc.details == [{"field": "schema.label", "problem": "regression label for LogisticRegressionWrapper"}]


def test_an_algorithm_the_server_does_not_offer_is_refused_before_anything_is_imported():
    only_linear = ModelFactory(["LinearRegressionWrapper"]).algorithm_class
    exc = refused(lambda: training(algorithms=only_linear))
    assert isinstance(exc, UnknownAlgorithm) and exc.status == 400 and "offered: LinearRegressionWrapper" in exc.message


def test_a_scoring_job_may_not_write_over_its_input_however_spelt():
    same = {**SCORING, "inputCollection": "shop.orders", "outputCollection": "mongodb://db.internal:27017/shop.orders"}
    exc = refused(lambda: ScoringJob.from_document(same, resolver))
    assert exc.status == 400 and "'outputCollection' must differ from 'inputCollection'" in exc.message
    exc = refused(lambda: ScoringJob.from_document({**SCORING, "modelkey": "../x"}, resolver))
    assert exc.status == 400 and "modelkey" in exc.message


# --------------------------------------------------------------------------------- defaults


def test_the_algorithm_class_defaults_are_applied_given_values_kept():
    job = training()
    assert job.document == {**JOB_DEFAULTS, **LogisticRegressionWrapper.DEFAULTS, **DOCUMENT}
    assert job.document["regParam"] == [0.5] and job.document["iterations"] == 100
    assert job.algorithm is LogisticRegressionWrapper and job.parser.num_features == 2


def test_the_defaults_are_the_class_attribute_not_a_lookup_by_name():
    """A subclass of the same name with other DEFAULTS gets its own: nothing is looked up by the
    name as a string any more."""

    class Tuned(LogisticRegressionWrapper):
        DEFAULTS = {**LogisticRegressionWrapper.DEFAULTS, "iterations": 7}

    job = training(algorithms=lambda name: Tuned)
    assert Tuned.name == "LogisticRegressionWrapper" and job.document["iterations"] == 7
    assert LinearRegressionWrapper.DEFAULTS == LogisticRegressionWrapper.DEFAULTS  # both linear, one table
    assert LogisticRegressionWrapper.DEFAULTS["iterations"] == 100  # untouched


def test_a_job_is_frozen_and_shares_nothing_with_the_submitted_document():
    document = copy.deepcopy(DOCUMENT)
    job = TrainingJob.from_document(document, FACTORY.algorithm_class, resolver)
    document["regParam"].append(9.0)
    assert job.document["regParam"] == [0.5]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.source = job.target  # type: ignore[misc]


# ------------------------------------------------------------------- redaction and lineage


def test_the_redacted_view_and_the_lineage_hold_no_credentials():
    job = training()
    for shown in (job.redacted(), job.lineage(), ScoringJob.from_document(SCORING, resolver).redacted()):
        assert "s3cret" not in json.dumps(shown) and "alice" not in json.dumps(shown), shown
    assert job.redacted()["inputCollection"] == "mongodb://%2A%2A%2A@db.internal:27017/shop.orders?authSource=admin"
    assert job.document["inputCollection"] == SECRET_URI  # the worker connects with them
    assert job.source.namespace == "shop.orders" and str(job.target) == "shop.results"


def test_the_lineage_names_what_a_job_runs_on_and_the_users_words():
    assert training().lineage() == {
        "algorithm": "LogisticRegressionWrapper",
        "input_collection": "mongodb://%2A%2A%2A@db.internal:27017/shop.orders?authSource=admin",
        "output_collection": "shop.results",
        "label": "y",
        "description": "orders",
        "tags": ["weekly"],
    }
    scoring = ScoringJob.from_document({**SCORING, "inputCollection": "shop.orders"}, resolver)
    assert scoring.lineage() == {
        "input_collection": "shop.orders",
        "output_collection": "shop.scored",
        "model_key": "a" * 32,
    }


# ------------------------------------------------------------------------------- messages


def test_a_training_message_round_trips_through_json_to_the_same_job():
    job = training()
    message = json.loads(json.dumps(job.to_message()))  # what Celery's JSON serializer does
    assert message["format"] == MESSAGE_FORMAT and message["kind"] == "training"
    again = TrainingJob.from_message(message, FACTORY.algorithm_class, resolver)
    assert again == job and again.parser.schema() == job.parser.schema()


def test_a_scoring_message_round_trips_to_the_same_job():
    job = ScoringJob.from_document(SCORING, resolver)
    assert ScoringJob.from_message(json.loads(json.dumps(job.to_message())), resolver) == job
    assert job.modelkey == "a" * 32 and job.task == "prediction_service.predict_all"


def test_the_worker_does_not_check_a_typed_message_again():
    """What was checked at submission is trusted: a message whose collection the worker's own
    allowlist would refuse still builds (resolution is not repeated on the worker)."""
    message = training().to_message()

    def refuse(spec, field):
        raise AssertionError(f"resolved again: {field}")

    assert TrainingJob.from_message(message, FACTORY.algorithm_class, refuse).source.db == "shop"


def test_a_plain_document_queued_by_the_previous_version_is_still_run():
    """A deploy may happen with jobs in the queue: the previous web process sent the job document
    itself, defaults applied, as the task's one argument."""
    previous = LogisticRegressionWrapper.with_defaults(copy.deepcopy(DOCUMENT))
    assert TrainingJob.from_message(previous, FACTORY.algorithm_class, resolver) == training()
    plain_scoring = copy.deepcopy(SCORING)
    assert ScoringJob.from_message(plain_scoring, resolver) == ScoringJob.from_document(SCORING, resolver)


def test_a_message_of_the_other_kind_is_refused():
    message = ScoringJob.from_document(SCORING, resolver).to_message()
    with pytest.raises(InvalidRequest, match="'predictall' message is not a training job"):
        TrainingJob.from_message(message, FACTORY.algorithm_class, resolver)
