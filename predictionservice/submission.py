"""Submitting a job: a client's document checked against this server and its data, then queued.

``submit_training``, ``submit_scoring`` and ``submit_comparison`` are what ``POST /train/``,
``POST /predictall/``, ``POST /models/compare`` and the pages run, and what a scheduler will run
with no web request at all: every
collaborator comes in as an argument (the job queue, the MongoDB clients, the algorithms, the
collection resolver, the stored models) and so do the client's identity and the request id.
Each answers the job's id, or raises the 4xx/429/503 that names what to change.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymongo.errors

from predictionservice.datasets import HIDDEN_PREFIXES
from predictionservice.exceptions import InvalidRequest, NotFound, did_you_mean
from predictionservice.job import AlgorithmClasses, ComparisonJob, Resolver, ScoringJob, StoredModels, TrainingJob
from predictionservice.jobqueue import JobQueue, Origin
from predictionservice.mongotarget import CollectionRef, MongoClients, check_replica_set, scrub


@dataclass(frozen=True)
class TrainingLimits:
    """What one training job may cost a worker on this server (the settings of the same names).
    The JSON schema's bounds (50 x 50 x 20 fits, 10,000 iterations) say what a document may
    hold; these say what this server runs."""

    max_job_fits: int
    max_iterations: int
    max_feature_width: int
    max_label_classes: int
    max_forest_nodes: int


def submit_training(
    document: Any,
    *,
    algorithms: AlgorithmClasses,
    resolve: Resolver,
    mongo: MongoClients,
    queue: JobQueue,
    limits: TrainingLimits,
    origin: Origin,
    job_id: str | None = None,
) -> str:
    """Check a training job document and queue it: its id (job_id when given). Checked: the document (TrainingJob),
    its collections' URI options against their servers, its cost against limits, and its
    fields and label against a sample of its input."""
    job = TrainingJob.from_document(document, algorithms, resolve)
    _reachable(job.source, mongo, "inputCollection")
    if job.target is not None:
        _reachable(job.target, mongo, "outputCollection")
    check_cost(job, limits)

    # The fields and the label against a sample of the data; an empty or missing input is
    # refused there (NotFound), so the input is not asked for its first document first (a
    # server without a suitable index may scan the whole collection for it).
    def sample_check() -> None:
        with mongo.collection(job.source) as collection:
            job.algorithm.check_sample(job.parser, collection, str(job.source))

    try:
        _readable(sample_check, job.source)
    except NotFound:  # empty, or missing: a mistyped name is answered with the close ones
        _check_spelling(job.source, mongo)
        raise
    return queue.submit(job, origin, job_id)


def submit_scoring(
    document: Any,
    *,
    predictors: Any,
    resolve: Resolver,
    mongo: MongoClients,
    queue: JobQueue,
    origin: Origin,
    references: Any = None,
) -> str:
    """Check a batch scoring request and queue it: its id. predictors gives the stored model's
    predictor by key (NotFound when there is none); a schema in the request must agree with it,
    and the input must hold a document. A named model's reference is resolved now (references,
    ``references.References``): the job runs the version it named at submission, and records
    the model key, the reference and the version."""
    job = ScoringJob.from_document(document, resolve)
    resolved = references.resolve(job.modelkey) if references is not None else None
    if resolved is not None:
        named = {"modelkey": resolved.key, "reference": job.modelkey, "model": resolved.shown()}
        job = dataclasses.replace(job, document={**job.document, **named})
    _reachable(job.source, mongo, "inputCollection")
    _reachable(job.target, mongo, "outputCollection")
    predictor = predictors.get(job.modelkey)
    if "schema" in job.document:
        predictor.check_schema(job.document["schema"])
    if job.explain:
        predictor.explainer()  # a model stored before explanations existed: 409 now, not a failed job
    _require_input(job.source, mongo)
    return queue.submit(job, origin)


def submit_comparison(
    document: Any, *, stored: StoredModels, resolve: Resolver, mongo: MongoClients, queue: JobQueue, origin: Origin
) -> str:
    """Check a comparison of models (``POST /models/compare``, the compare page) and queue it: its
    id. Every model must exist and share a task; the newest one's input, where its held-out rows
    are, must still hold documents."""
    job = ComparisonJob.from_document(document, stored, resolve)
    _reachable(job.source, mongo, "inputCollection")
    _require_input(job.source, mongo)
    return queue.submit(job, origin)


def check_cost(job: TrainingJob, limits: TrainingLimits) -> None:
    """What one job may cost a worker: fits (grid x folds), iterations and feature width, each
    refused naming its cap."""
    full = job.document
    grid_fields = [name for name, schema in job.algorithm.job_fields.items() if schema.get("type") == "array"]
    grid = math.prod(len(full[name]) for name in grid_fields)
    fits = grid * full["numFolds"]
    if fits > limits.max_job_fits:
        raise InvalidRequest(
            f"the job asks for {fits} fits ({grid} grid points x {full['numFolds']} folds); this server "
            f"runs at most {limits.max_job_fits} per job (max_job_fits)",
            details=[{"field": grid_fields[0], "problem": f"grid x numFolds over {limits.max_job_fits}"}],
        )
    if full.get("iterations", 0) > limits.max_iterations:
        raise InvalidRequest(
            f"'iterations' is {full['iterations']}; this server runs at most {limits.max_iterations} (max_iterations)",
            details=[{"field": "iterations", "problem": f"over {limits.max_iterations}"}],
        )
    _check_model_size(full, limits)
    if job.parser.num_features > limits.max_feature_width:
        raise InvalidRequest(
            f"the schema makes {job.parser.num_features} features (numeric features plus one-hot positions); "
            f"this server trains at most {limits.max_feature_width} (max_feature_width)",
            details=[{"field": "schema.features", "problem": f"over {limits.max_feature_width} features"}],
        )


def _check_model_size(full: dict[str, Any], limits: TrainingLimits) -> None:
    """What the model itself may cost: the classes of its label (each an output; Spark's planning
    of a 100,000-class label map held a worker 11 minutes) and a forest's nodes (numTrees x
    2^maxDepth: 500 trees of depth 20 passed every other cap, some 800 times a default job)."""
    classes = len(full["schema"]["label"].get("values") or {})
    if classes > limits.max_label_classes:
        raise InvalidRequest(
            f"the label maps {classes} classes; this server trains at most {limits.max_label_classes} "
            "(max_label_classes): group rare classes, or predict a coarser label",
            details=[{"field": "schema.label.values", "problem": f"over {limits.max_label_classes} classes"}],
        )
    if "numTrees" in full and "maxDepth" in full:
        trees, depth, most = max(full["numTrees"]), max(full["maxDepth"]), limits.max_forest_nodes
        if trees * 2**depth > most:
            raise InvalidRequest(
                f"numTrees x 2^maxDepth is {trees} x 2^{depth} = {trees * 2**depth} nodes at most; this server "
                f"grows at most {most} per fit (max_forest_nodes): lower numTrees or maxDepth "
                f"(maxDepth {depth - 1} halves it)",
                details=[{"field": "maxDepth", "problem": f"numTrees x 2^maxDepth over {most}"}],
            )


def _reachable(ref: CollectionRef, mongo: MongoClients, field: str) -> None:
    """A job URI's options must fit its server (a 400 naming the option, not a 503 after the
    selection timeout)."""
    check_replica_set(ref, mongo, field)


def _require_input(source: CollectionRef, mongo: MongoClients) -> None:
    """A job's input must hold a document."""

    def first() -> Any:
        with mongo.collection(source) as collection:
            return collection.find_one({}, {"_id": 1})

    if _readable(first, source) is None:
        _check_spelling(source, mongo)
        raise NotFound(f"input collection {source} is empty or does not exist")


def _check_spelling(source: CollectionRef, mongo: MongoClients) -> None:
    """A job's input found empty: when it does not exist and a collection of its database has a
    close name, a 400 naming it (a mistyped 'datasets.bnak' is the client's slip, not a missing
    dataset); else nothing, and the caller's 404 stands."""
    try:
        with mongo.collection(source) as collection:
            names = collection.database.list_collection_names()
    except pymongo.errors.PyMongoError:  # no right to list them: no suggestion
        return
    if source.collection in names:
        return
    visible = [n for n in names if not n.startswith(HIDDEN_PREFIXES)]
    hint = did_you_mean(source.collection, visible, prefix=f"{source.db}.")
    if hint:
        raise InvalidRequest(
            f"'inputCollection': {source} does not exist{hint}",
            details=[{"field": "inputCollection", "problem": f"does not exist{hint}"}],
        )


def _readable(read: Callable[[], Any], source: CollectionRef) -> Any:
    """A read of a job's input; a server behind a job's own URI that refuses it (wrong
    credentials) is the client's mistake, not a 500."""
    try:
        return read()
    except pymongo.errors.OperationFailure as exc:
        reason = scrub((exc.details or {}).get("errmsg") or str(exc))
        raise InvalidRequest(f"'inputCollection': MongoDB refused to read {source}: {reason[:200]}") from None
