"""predictionservice/submission.py and jobqueue.py as a scheduler will call them: no Flask app,
no request; the session's real Redis (the job store and the Celery broker) and MongoDB. The job
record, the queued message, and the worker's rebuilding of the job from that message."""

from __future__ import annotations

import base64
import json
import time

import flask
import pytest
import redis

from celeryapp import make_celery, queue_key
from localservers import embedded
from modelfactory import ModelFactory
from predictionservice.config import pick
from predictionservice.exceptions import (
    BadName,
    InvalidRequest,
    InvalidSchema,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)
from predictionservice.job import ScoringJob, TrainingJob
from predictionservice.jobqueue import JobQueue, Origin
from predictionservice.jobstore import FAILED, PENDING, JobStore
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients, MongoTargets
from predictionservice.predictorcache import PredictorCache
from predictionservice.references import References
from predictionservice.registry import Registry
from predictionservice.submission import TrainingLimits, submit_scoring, submit_training

pytestmark = pytest.mark.app

SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x"}, {"key": "c", "values": {"a": 0, "b": 1}}],
}
LIMITS = TrainingLimits(
    max_job_fits=100, max_iterations=1000, max_feature_width=100, max_label_classes=10, max_forest_nodes=10**6
)


class Scheduler:
    """What a scheduler holds to submit jobs: the stores, a Celery app to send with, the
    algorithms and the resolver of this server's settings. Built from settings alone."""

    def __init__(self, params: dict, max_queued: int = 10, per_client: int = 5):
        self.params = params
        self.redis = redis.Redis.from_url(params["redis_url"])
        self.jobs = JobStore(self.redis, params["job_ttl"], params["redis_key_prefix"])
        self.celery = make_celery(params, set_as_current=False)
        self.queue_key = queue_key(params)
        self.queue = JobQueue(self.redis, self.jobs, self.queue_key, self.send, max_queued, per_client)
        self.factory = ModelFactory(params["algorithms"])
        self.mongo = MongoClients(params["mongodb_timeout_ms"])
        self.models = ModelStore(redis.Redis.from_url(params["redis_url"]), params["redis_key_prefix"])

    def send(self, task: str, args: list, task_id: str) -> None:
        self.celery.send_task(task, args=args, task_id=task_id, queue=self.params["queue_name"])

    def resolve(self, spec, field):
        return pick(MongoTargets, self.params).resolve(spec, field)

    def train(self, document: dict, client: str = "scheduler") -> str:
        return submit_training(
            document,
            algorithms=self.factory.algorithm_class,
            resolve=self.resolve,
            mongo=self.mongo,
            queue=self.queue,
            limits=LIMITS,
            origin=Origin(client, "nightly-retrain"),
        )

    def queued(self) -> list[tuple[dict, list]]:
        """Each waiting message's headers and task arguments, oldest first."""
        messages = [json.loads(raw) for raw in reversed(self.redis.lrange(self.queue_key, 0, -1))]
        return [(m["headers"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


@pytest.fixture()
def scheduler(base_params, redis_db, mongo_db):
    """Settings pointing at a flushed Redis database of its own (no worker reads its queue)."""
    url = base_params["redis_url"].rsplit("/", 1)[0] + "/9"
    mongo_db.rows.insert_many([{"x": i, "c": "ab"[i % 2], "y": ["no", "yes"][i % 3 == 0]} for i in range(30)])
    made = Scheduler({**base_params, "redis_url": url})
    yield made
    made.mongo.close()


def document(db: str, **more) -> dict:
    return {"name": "LogisticRegressionWrapper", "inputCollection": f"{db}.rows", "schema": SCHEMA, **more}


def test_a_training_job_is_submitted_with_no_flask_app_and_the_worker_rebuilds_it(scheduler, mongo_db):
    assert not flask.has_app_context() and not flask.has_request_context()
    submitted = document(mongo_db.name, regParam=[0.1, 1.0], description="nightly")
    before = time.time()
    job_id = scheduler.train(submitted)

    record = scheduler.jobs.get(job_id)
    assert record["status"] == PENDING and record["kind"] == "training" and record["request_id"] == "nightly-retrain"
    assert record["created_at"] >= before
    assert record["parameters"]["regParam"] == [0.1, 1.0] and record["parameters"]["iterations"] == 100  # defaults
    assert "schema" not in record["parameters"]  # the one copy is the message's
    assert record["lineage"] == {"algorithm": "LogisticRegressionWrapper", "input_collection": f"{mongo_db.name}.rows",
                                 "label": "y", "description": "nightly"}  # fmt: skip
    assert record["lineage"] == TrainingJob.from_document(submitted, scheduler.factory.algorithm_class,
                                                          scheduler.resolve).lineage()  # fmt: skip
    assert scheduler.jobs.queued_by("scheduler") == 1

    [(headers, args)] = scheduler.queued()
    assert headers["id"] == job_id and headers["task"] == TrainingJob.task
    rebuilt = TrainingJob.from_message(args[0], scheduler.factory.algorithm_class, scheduler.resolve)
    assert rebuilt == TrainingJob.from_document(submitted, scheduler.factory.algorithm_class, scheduler.resolve)
    assert rebuilt.document["schema"] == SCHEMA and rebuilt.source.namespace == f"{mongo_db.name}.rows"


def test_a_scoring_job_is_submitted_with_no_flask_app(scheduler, mongo_db):
    model = {"name": "LogisticRegressionWrapper", "schema": SCHEMA, "coefficients": [1.0, 0.5, -0.5], "intercept": 0.1}
    scheduler.models.save("m1", model)
    predictors = PredictorCache(scheduler.factory, scheduler.models)
    request = {"modelkey": "m1", "inputCollection": f"{mongo_db.name}.rows", "outputCollection": f"{mongo_db.name}.out"}

    def score(body: dict) -> str:
        return submit_scoring(body, predictors=predictors, resolve=scheduler.resolve, mongo=scheduler.mongo,
                              queue=scheduler.queue, origin=Origin("scheduler", "nightly-score"))  # fmt: skip

    job_id = score(request)
    assert scheduler.jobs.get(job_id)["kind"] == "predictall"
    [(headers, args)] = scheduler.queued()
    assert headers["id"] == job_id and headers["task"] == ScoringJob.task
    assert ScoringJob.from_message(args[0], scheduler.resolve) == ScoringJob.from_document(request, scheduler.resolve)

    with pytest.raises(NotFound, match="model 'm2' not found"):
        score({**request, "modelkey": "m2"})
    with pytest.raises(NotFound, match="is empty or does not exist"):
        score({**request, "inputCollection": f"{mongo_db.name}.none"})
    with pytest.raises(InvalidRequest) as mistyped:
        score({**request, "inputCollection": f"{mongo_db.name}.Rows"})
    assert mistyped.value.message == (
        f"'inputCollection': {mongo_db.name}.Rows does not exist (did you mean '{mongo_db.name}.rows'?)"
    )
    assert len(scheduler.queued()) == 1  # nothing refused was queued


def test_a_refused_document_records_and_queues_nothing(scheduler, mongo_db):
    with pytest.raises(InvalidSchema, match="label field 'z' not found") as caught:
        scheduler.train(document(mongo_db.name, schema={**SCHEMA, "label": {"key": "z", "values": {"a": 0, "b": 1}}}))
    assert caught.value.status == 400
    assert scheduler.queued() == [] and not list(scheduler.redis.scan_iter("job:*"))


def test_the_queue_policy_holds_without_a_request(scheduler, mongo_db, base_params):
    """The queue's size and each client's share are the library's: a scheduler meets them too."""
    small = Scheduler(scheduler.params, max_queued=3, per_client=2)
    small.train(document(mongo_db.name))
    small.train(document(mongo_db.name))
    with pytest.raises(TooManyRequests, match=r"2 jobs of this client \(scheduler\) are waiting") as caught:
        small.train(document(mongo_db.name))
    assert caught.value.status == 429 and caught.value.retry_after == 30
    small.train(document(mongo_db.name), client="another")
    with pytest.raises(TooManyRequests, match="3 jobs are waiting for a worker"):
        small.train(document(mongo_db.name), client="a third")
    assert len(small.queued()) == 3


def test_a_broker_that_cannot_be_reached_is_503_and_the_record_says_so(scheduler, mongo_db):
    """The record is written before the message is sent: when sending fails, it ends FAILED."""
    down = Scheduler(scheduler.params)
    down.celery = make_celery({**scheduler.params, "redis_url": f"redis://127.0.0.1:{embedded.free_port()}/0"},
                              set_as_current=False)  # fmt: skip
    with pytest.raises(ServiceUnavailable, match="the job queue \\(Redis\\) is unreachable") as caught:
        down.train(document(mongo_db.name))
    assert caught.value.status == 503
    [record] = [down.jobs.get(key.decode().split(":", 1)[1]) for key in down.redis.scan_iter("job:*")
                if key.count(b":") == 1]  # fmt: skip
    assert record["status"] == FAILED and "the broker is unreachable" in record["message"]


def test_a_scoring_job_by_reference_runs_the_version_named_at_submission(scheduler, mongo_db):
    """The job records the resolved key, the reference and the version: a later move of the
    alias does not change what it scores with."""
    registry = Registry(scheduler.models)
    model = {"name": "LogisticRegressionWrapper", "schema": SCHEMA, "coefficients": [1.0, 0.5, -0.5],
             "intercept": 0.1, "task": "binary"}  # fmt: skip
    registry.add_version("nightly", "a" * 32, model)
    registry.add_version("nightly", "b" * 32, model)
    predictors = PredictorCache(scheduler.factory, scheduler.models)
    request = {"modelkey": "nightly", "inputCollection": f"{mongo_db.name}.rows",
               "outputCollection": f"{mongo_db.name}.out"}  # fmt: skip
    job_id = submit_scoring(request, predictors=predictors, resolve=scheduler.resolve, mongo=scheduler.mongo,
                            queue=scheduler.queue, origin=Origin("scheduler", "nightly-score"),
                            references=References(registry))  # fmt: skip
    registry.move("nightly", "production", 2)
    [(_, args)] = scheduler.queued()
    job = ScoringJob.from_message(args[0], scheduler.resolve)
    assert job.modelkey == "a" * 32
    assert job.document["reference"] == "nightly"
    assert job.document["model"] == {"name": "nightly", "version": 1, "model_key": "a" * 32}
    lineage = scheduler.jobs.get(job_id)["lineage"]
    assert lineage["model_key"] == "a" * 32 and lineage["reference"] == "nightly"


def test_a_training_job_names_its_model_and_a_bad_name_queues_nothing(scheduler, mongo_db):
    job_id = scheduler.train(document(mongo_db.name, model="churn"))
    assert scheduler.jobs.get(job_id)["lineage"]["model"] == "churn"
    [(_, args)] = scheduler.queued()
    assert TrainingJob.from_message(args[0], scheduler.factory.algorithm_class, scheduler.resolve).document[
        "model"
    ] == "churn"  # fmt: skip
    for bad in ["-churn", "0" * 32, "a" * 65, ["churn"]]:
        with pytest.raises(BadName) as refused:
            scheduler.train(document(mongo_db.name, model=bad))
        assert refused.value.details[0]["field"] == "model"
    assert len(scheduler.queued()) == 1
