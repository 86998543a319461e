"""ModelFactory: resolves an algorithm by name, from the configured allowlist only, and runs it.

An algorithm ``Name`` is the class ``Name`` of the top-level module ``Name.py`` (the classic
``LogisticRegressionWrapper``). A name outside the allowlist is refused before anything is
imported. Three words, each for one thing:

* an **algorithm** is an instance of such a class, a subclass of ``Algorithm``; it offers::

      DEFAULTS, with_defaults(document)                        # what a job may leave out
      check(document) -> parser                                # at submission: its fields, its task
      train(training_job, resources, handler) -> dict          # the stored model (worker)
      compile(stored_model) -> predictor                       # online scoring, numpy (web)
      predict_all(stored_model, scoring_job, resources, handler) -> dict  # batch scoring (worker)

  ``check`` and ``with_defaults`` run once, when predictionservice.job builds the typed job
  (``TrainingJob.from_document``); ``train`` and ``predict_all`` take that job as it is.

* a **stored model** is the JSON document an algorithm's ``train`` saved in the model store;
* a **predictor** is a stored model compiled for online scoring (``predict_one``, ``predict``).

The web process's cache of compiled predictors, which was here, is
predictionservice.predictorcache.PredictorCache (it takes a ModelFactory; the library imports no
chapter file).
"""

from __future__ import annotations

import copy
import importlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dataparser import DataParser, check_sample
from predictionservice import trainingdata
from predictionservice.defaults import JOB_DEFAULTS
from predictionservice.exceptions import InvalidSchema, NotFound, UnknownAlgorithm
from predictionservice.job import ComparisonJob, ScoringJob, TrainingJob
from predictionservice.jobstore import iso
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients
from predictionservice.redisclient import through_outage
from predictionservice.registry import Registry
from predictionservice.validation import Validator, job_schema

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")


@dataclass
class Resources:
    """What a job needs from its worker: settings, stores and (lazily) Spark."""

    params: dict[str, Any]
    models: ModelStore
    mongo: MongoClients
    spark: Callable[[], Any]


TASK_WORDS = {"binary": "binary classification", "multiclass": "multi-class classification", "regression": "regression"}


class Algorithm:
    """What every algorithm of the service is, and the steps the Spark ML ones share.

    A subclass names its ``tasks`` (what label kinds it learns), its own job fields as JSON Schema
    (``job_fields``) and what a job may leave out of them (``DEFAULTS``), and fills in four steps:
    ``estimator`` (the Spark estimator and grid), ``learned`` (what of the fitted model is
    stored), ``compile`` (the numpy predictor) and ``prepare``/``outputs`` (batch scoring). The
    steps that read, encode, cross-validate, evaluate, store and write are the same for all."""

    name = ""
    title = ""  # as a person names it ("random forest"): the pages show it for the class name
    summary = ""  # one line: what it is good at (the training page)
    tasks: frozenset[str] = frozenset()
    job_fields: dict[str, Any] = {}
    field_help: dict[str, str] = {}  # one line per job field: what moving it does (the training page)
    DEFAULTS: dict[str, Any] = {}  # of its own fields: what a job may leave out (docs/algorithms.md)
    # Whether the stored model keeps the training means and standard deviations of the encoded
    # columns ("feature_means", "feature_stds"): a linear model's explanations are measured from
    # the means (docs/API.md, "Explanations"), its page's standardized effects use the deviations.
    stores_feature_means = False

    @classmethod
    def job_schema(cls) -> dict[str, Any]:
        return job_schema(cls.name, cls.job_fields)

    @classmethod
    def validator(cls) -> Validator:
        if cls.__dict__.get("_validator") is None:
            cls._validator = Validator(cls.job_schema())
        return cls._validator

    @classmethod
    def with_defaults(cls, job: Mapping[str, Any]) -> dict[str, Any]:
        """The job document with every optional field filled in (what the worker runs and stores)."""
        return copy.deepcopy({**JOB_DEFAULTS, **cls.DEFAULTS, **job})

    @classmethod
    def check(cls, job: Mapping[str, Any]) -> DataParser:
        """At submission: the job's fields are this algorithm's, and its schema asks for a task
        it can learn. The parser of the job's schema."""
        cls.validator().check(job, "job document")
        parser = DataParser(job["schema"])
        if parser.task not in cls.tasks:
            can = " or ".join(TASK_WORDS[t] for t in sorted(cls.tasks))
            kind = "a label with 'values' (categories)" if parser.label_values else "a numeric label (no 'values')"
            raise InvalidSchema(
                f"{cls.name} does {can}; schema.label '{parser.label_key}' is {kind}, which asks for "
                f"{TASK_WORDS[parser.task]}",
                details=[{"field": "schema.label", "problem": f"{parser.task} label for {cls.name}"}],
            )
        return parser

    @staticmethod
    def check_sample(parser: DataParser, collection: Any, source: str) -> None:
        """At submission: the job's fields and label against a sample of its input (what the
        library's submission asks of the algorithm: it imports no chapter file)."""
        check_sample(parser, collection, source)

    @staticmethod
    def parse(schema: Mapping[str, Any]) -> DataParser:
        """The parser of a job's schema that check() accepted at submission (the worker's)."""
        return DataParser(schema)

    # ------------------------------------------------------------------------------ training

    @staticmethod
    def _check_input(resources: Resources, source: Any, parser: Any, encoded: Any, counts: dict[str, Any]) -> None:
        """Something to learn from, or a failure that names why. The POST checked the fields on a
        sample; only when no row is usable is the collection asked which field is gone or
        whether it is empty (a server may read the whole collection to answer a find_one).
        Nothing stays cached when the job fails here."""
        try:
            if counts["rows"] == sum(counts["invalid"].values()):
                with resources.mongo.collection(source) as collection:
                    trainingdata.check_fields(collection, source, parser)
            trainingdata.check_rows(parser, source, counts["rows"], counts["invalid"], counts["classes"])
        except Exception:
            encoded.unpersist()
            raise

    def train(
        self, training: TrainingJob, resources: Resources, handler: Any, trigger: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Fit, evaluate and store the model of a job checked and completed at submission; trigger,
        what queued the job when not a client (a retrain on drift's report), is kept with it."""
        started = time.monotonic()
        job, parser, source = training.document, training.parser, training.source
        handler.progress(f"reading {source}", 0.05)
        spark = resources.spark()
        from predictionservice import crossvalidation, sparkfeatures
        from predictionservice.sparksession import job_group

        with job_group(spark, handler.job_id, f"training {source}"):
            encoded, counts = sparkfeatures.encoded_input(
                spark, job, parser, source, read_partitions=resources.params["spark_read_partitions"],
                partition_mb=resources.params["spark_partition_mb"],
            )  # fmt: skip
            self._check_input(resources, source, parser, encoded, counts)
            moments = sparkfeatures.feature_moments(encoded) if self.stores_feature_means else None
            profile, profile_scores = self._profiling(encoded, parser, resources.params)
            skipped = trainingdata.skipping(counts["invalid"])
            handler.progress(f"encoded {counts['rows']} rows of {source}{skipped}", 0.1)
            estimator, grid = self.estimator(job, parser)
            fit = crossvalidation.cross_validate(
                estimator, grid, encoded, parser.task, job, handler,
                parallelism=resources.params["spark_cv_parallelism"], profile_scores=profile_scores,
            )  # fmt: skip
            handler.progress("saving the model", 0.95)
            learned = self.learned(fit["best"], parser, spark, resources.params["spark_scratch_dir"] or None)
        model = {
            "model_key": handler.job_id,
            "name": self.name,
            "task": parser.task,
            "created_at": iso(time.time()),
            "num_features": parser.num_features,
            **({"num_classes": len(parser.class_names)} if parser.class_names else {}),
            "feature_names": parser.feature_names(),
            "schema": parser.schema(),
            "integral_features": counts["integral"],
            **learned,
            **({"feature_means": moments[0], "feature_stds": moments[1]} if moments is not None else {}),
            "parameters": training.redacted(),
            "metrics": fit["metrics"],
            "profile": {**profile, "score": fit["score_profile"], "heldout_rows": fit["holdout_rows"]},
            "training": {
                "rows": counts["rows"],
                "invalid_rows": sum(counts["invalid"].values()),
                "invalid_reasons": trainingdata.reasons(counts["invalid"]),
                "holdout_rows": fit["holdout_rows"],
                "best_params": best_params(fit["best"], grid),
                "cv": fit["cv"],
                "seconds": round(time.monotonic() - started, 3),
            },
            **({"trigger": dict(trigger)} if trigger else {}),
        }
        name = job.get("model")
        if name:  # the name's next version, in the very transaction that stores the model
            registry = Registry(resources.models)
            document = dict(job)  # what a retrain of the name queues again (registry's last_job)
            through_outage(
                lambda: registry.add_version(name, handler.job_id, model, document), f"saving model {handler.job_id}"
            )
        else:
            through_outage(lambda: resources.models.save(handler.job_id, model), f"saving model {handler.job_id}")
        return model

    @staticmethod
    def _profiling(encoded: Any, parser: Any, params: Mapping[str, Any]) -> tuple[dict[str, Any], Callable]:
        """The features' training profile (on the cached encoding) and what profiles the score on
        the held-out predictions during cross-validation (docs/API.md, "Quality and drift")."""
        from predictionservice import sparkprofile

        bins, top = int(params["profile_bins"]), int(params["profile_top_categories"])
        profile = sparkprofile.feature_profile(encoded, parser, bins=bins, top=top)

        def profile_scores(predictions: Any) -> dict[str, Any]:
            return sparkprofile.score_profile(predictions, parser.task, parser.class_names, bins=bins)

        return profile, profile_scores

    # -------------------------------------------------------------------------- batch scoring

    def predict_all(
        self, stored: Mapping[str, Any], job: ScoringJob, resources: Resources, handler: Any
    ) -> dict[str, Any]:
        parser = DataParser(stored["schema"])
        params = resources.params
        source, target = job.source, job.target
        # NotExplainable fails the job naming the remedy (POST /predictall/ refuses it first)
        explainer = self.compile(stored).explainer() if job.explain else None
        handler.progress(f"reading {source}", 0.05)
        spark = resources.spark()
        from predictionservice.scorecolumns import explained, with_explain_slots
        from predictionservice.sparksession import job_group, read_collection, write_collection

        with job_group(spark, handler.job_id, f"scoring {source} into {target}"):
            df = read_collection(
                spark, source, partitions=params["spark_read_partitions"], partition_mb=params["spark_partition_mb"]
            )
            if not df.schema.fields:  # the inferred schema's sample found no document (POST checked it too)
                raise NotFound(f"input collection {source} is empty or does not exist")
            if explainer is not None:
                df = with_explain_slots(df, parser)
            prepared = self.prepare(df, stored, parser).cache()
            stats = prepared.groupBy("error").count().collect()
            invalid = trainingdata.invalid_counts(stats)
            rows = sum(r["count"] for r in stats if r["error"] is None)
            handler.progress(f"scoring {rows} rows into {target}{trainingdata.skipping(invalid)}", 0.3)
            out = self.outputs(prepared.filter("error IS NULL"), stored, parser)
            if explainer is not None:  # the explanation beside each score, on the executors
                out = explained(out, explainer, [f.key for f in parser.features], parser.num_features)
            write_collection(out, target, batch_size=params["spark_write_batch"], overwrite=True, key="value._id")
            prepared.unpersist()
        return {"rows": rows, "invalid_rows": sum(invalid.values()), "invalid_reasons": trainingdata.reasons(invalid)}

    # ------------------------------------------------------------------ what a subclass fills in

    def estimator(self, job: Mapping[str, Any], parser: DataParser) -> tuple[Any, list]:
        raise NotImplementedError

    def learned(self, best: Any, parser: DataParser, spark: Any, scratch_dir: str | None) -> dict[str, Any]:
        """What of the fitted model is stored; scratch_dir (spark_scratch_dir, None: the system's
        temporary folder) is where a forest's nodes pass on their way out of Spark."""
        raise NotImplementedError

    def compile(self, stored: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def prepare(self, df: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        raise NotImplementedError

    def outputs(self, prepared: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        raise NotImplementedError


def best_params(model: Any, grid: list) -> dict[str, Any]:
    """The grid point cross-validation chose: the fitted model's value of each grid field."""
    names = {param.name for point in grid for param in point}
    chosen = {param.name: value for param, value in model.extractParamMap().items() if param.name in names}
    return {name: value.item() if hasattr(value, "item") else value for name, value in sorted(chosen.items())}


class ModelFactory:
    def __init__(self, allowed: Iterable[str]):
        self.allowed = tuple(allowed)
        self._classes: dict[str, type] = {}
        self._lock = threading.Lock()

    def check(self, name: Any) -> str:
        """The name when the server offers it; UnknownAlgorithm otherwise (nothing imported)."""
        if not isinstance(name, str) or not _NAME.match(name) or name not in self.allowed:
            offered = ", ".join(self.allowed) or "none"
            raise UnknownAlgorithm(f"algorithm {name!r} is not offered by this server (offered: {offered})")
        return name

    def algorithm_class(self, name: Any) -> type:
        name = self.check(name)
        with self._lock:
            cls = self._classes.get(name)
            if cls is None:
                cls = getattr(importlib.import_module(name), name)
                self._classes[name] = cls
        return cls

    def algorithm(self, name: Any) -> Algorithm:
        """An instance of the algorithm called name (a job document's or a stored model's)."""
        return self.algorithm_class(name)()

    def job_schemas(self) -> dict[str, dict[str, Any]]:
        """Each offered algorithm's job document schema (for /openapi.json)."""
        return {name: self.algorithm_class(name).job_schema() for name in self.allowed}

    def train(
        self, job: TrainingJob, resources: Resources, handler: Any, trigger: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return job.algorithm().train(job, resources, handler, trigger)

    def predict_all(self, job: ScoringJob, resources: Resources, handler: Any) -> dict[str, Any]:
        loaded = resources.models.load(job.modelkey)
        if loaded is None:
            raise NotFound(f"model '{job.modelkey}' not found")
        stored, _ = loaded
        return self.algorithm(stored.get("name")).predict_all(stored, job, resources, handler)

    def compare(self, job: ComparisonJob, resources: Resources, handler: Any) -> dict[str, Any]:
        """The comparison's models scored on the newest one's held-out rows (sparkgate.compare_models):
        its figures, the models in the order the job names them."""
        stored = {}
        for key in job.models:
            loaded = resources.models.load(key)
            if loaded is None:
                raise NotFound(f"model '{key}' not found: it was deleted after the comparison was queued")
            stored[key] = {**loaded[0], "model_key": key}
        newest = stored[job.heldout_of]
        document = {**JOB_DEFAULTS, **(newest.get("parameters") or {})}
        parser = self.algorithm(newest["name"]).parse(newest["schema"])
        from predictionservice import sparkgate
        from predictionservice.sparksession import job_group

        trained = sparkgate.Trained(
            newest, parser, job.source, int(document["seed"]), float(document["holdoutFraction"])
        )
        others = [stored[key] for key in job.models if key != job.heldout_of]
        handler.progress(f"scoring {len(stored)} models on the held-out rows of {job.heldout_of}", 0.1)
        spark = resources.spark()
        with job_group(spark, handler.job_id, f"comparing {len(stored)} models"):
            figures = sparkgate.compare_models(
                spark, trained, others, self.algorithm, partitions=resources.params["spark_read_partitions"],
                partition_mb=resources.params["spark_partition_mb"],
            )  # fmt: skip
        by_key = {entry["model_key"]: entry for entry in figures["models"]}
        return {**figures, "heldout_of": job.heldout_of, "models": [by_key[key] for key in job.models]}

    def compile(self, stored: Mapping[str, Any]) -> Any:
        """The predictor of a stored model, labelled with its algorithm's name (what the
        predictions of /metrics are counted by)."""
        predictor = self.algorithm(stored.get("name")).compile(stored)
        predictor.algorithm = stored.get("name")
        return predictor
