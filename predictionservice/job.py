"""Typed jobs: a training or a scoring job, built once from the document a client submitted.

``TrainingJob.from_document`` and ``ScoringJob.from_document`` are the one place a job document
is checked (its JSON Schema, the algorithm's own fields and task), completed (the common
defaults, then the algorithm class's ``DEFAULTS``) and its collections resolved. What follows
(the job queue, the job record, the worker, the stored model) takes the typed job as it is and
never checks or completes it again. ``to_message``/``from_message`` are the Celery message; a
plain job document queued by a version before these types (a deploy with jobs in the queue) is
still read.

An algorithm is handed in as its class (the library imports no chapter file): what the class
offers here is ``name``, ``check(document)`` (the checks, and the parser of its schema),
``with_defaults(document)`` and ``parse(schema)`` (the parser of a schema checked already).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from predictionservice.defaults import MAX_COMPARED
from predictionservice.exceptions import InvalidRequest
from predictionservice.mongotarget import CollectionRef, redact
from predictionservice.registry import check_name
from predictionservice.validation import JOB_VALIDATOR, PREDICTALL_VALIDATOR

# A job's collection spec ('db.collection' or a mongodb:// URI) and its field -> where it is.
Resolver = Callable[[Any, str], CollectionRef]
# The class of an algorithm by its name (ModelFactory.algorithm_class: the allowlist applies).
AlgorithmClasses = Callable[[Any], type]

# What marks a message of these types; a message without it is a plain job document.
MESSAGE_FORMAT = "prediction_service.job/2"
COLLECTIONS = ("inputCollection", "outputCollection")


def redacted(document: Mapping[str, Any]) -> dict[str, Any]:
    """A job document fit to store and show: credentials in its collection URIs replaced."""
    return {k: redact(v) if k in COLLECTIONS and isinstance(v, str) else v for k, v in document.items()}


def lineage_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """What a list of jobs shows of a job document: what it runs on, and the user's words. It
    reads any stored document (a record's parameters, whatever version wrote them)."""
    schema = document.get("schema") if isinstance(document.get("schema"), dict) else {}
    label = schema.get("label") if isinstance(schema.get("label"), dict) else {}
    shown = {
        "algorithm": document.get("name"),
        "input_collection": document.get("inputCollection"),
        "output_collection": document.get("outputCollection"),
        "model_key": document.get("modelkey"),
        "model": document.get("model"),
        "reference": document.get("reference"),
        "label": label.get("key"),
        "description": document.get("description"),
        "tags": document.get("tags"),
    }
    return {k: v for k, v in shown.items() if v is not None}


def _collections(document: Mapping[str, Any], resolve: Resolver) -> tuple[CollectionRef, CollectionRef | None]:
    """Where a document's input is, and its output when it names one."""
    output = document.get("outputCollection")
    return resolve(document["inputCollection"], "inputCollection"), (
        None if output is None else resolve(output, "outputCollection")
    )


def _ref(ref: CollectionRef | None) -> list[str] | None:
    return None if ref is None else [ref.uri, ref.db, ref.collection]


def _unref(value: Any) -> CollectionRef | None:
    return None if value is None else CollectionRef(*value)


@dataclass(frozen=True)
class _Job:
    """What both kinds share: the document as it runs (credentials kept: the worker connects
    with them; never shown, see ``redacted``) and its resolved collections."""

    document: Mapping[str, Any]
    source: CollectionRef
    target: CollectionRef | None

    kind: ClassVar[str] = ""  # the job record's kind
    task: ClassVar[str] = ""  # the Celery task that runs it

    def __init_subclass__(cls, kind: str = "", task: str = "", **rest: Any) -> None:
        super().__init_subclass__(**rest)
        cls.kind, cls.task = kind, task

    def redacted(self) -> dict[str, Any]:
        """The document fit to store and show (the job record, the model's parameters)."""
        return redacted(self.document)

    def lineage(self) -> dict[str, Any]:
        """What a list of jobs or models shows of it."""
        return lineage_of(self.redacted())

    def to_message(self) -> dict[str, Any]:
        """The Celery message's one argument (JSON): nothing the worker must work out again."""
        return {
            "format": MESSAGE_FORMAT,
            "kind": self.kind,
            "document": dict(self.document),
            "source": _ref(self.source),
            "target": _ref(self.target),
        }

    @staticmethod
    def _parts(message: Any, kind: str) -> tuple[dict[str, Any], CollectionRef, CollectionRef | None] | None:
        """The parts of a typed message of kind; None for a plain job document (a message queued
        by the previous version)."""
        if not isinstance(message, Mapping) or message.get("format") != MESSAGE_FORMAT:
            return None
        if message.get("kind") != kind:
            raise InvalidRequest(f"a {message.get('kind')!r} message is not a {kind} job")
        return copy.deepcopy(dict(message["document"])), _unref(message["source"]), _unref(message["target"])


@dataclass(frozen=True)
class TrainingJob(_Job, kind="training", task="prediction_service.train"):
    """A training job: its algorithm's class and the parser of its schema come with it."""

    algorithm: type
    parser: Any = field(compare=False, repr=False)  # the same schema, read: equal when the schema is

    @property
    def name(self) -> str:
        return self.document["name"]

    @classmethod
    def from_document(cls, document: Any, algorithms: AlgorithmClasses, resolve: Resolver) -> TrainingJob:
        """The job a client's document asks for, or the 4xx that names what is wrong with it:
        the document's form, an algorithm this server does not offer, fields or a label the
        algorithm cannot take, a collection that may not be used."""
        if isinstance(document, Mapping) and "model" in document:  # named before the schema's terser words
            check_name(document["model"])
        JOB_VALIDATOR.check(document, "job document")
        algorithm = algorithms(document["name"])
        parser = algorithm.check(document)  # its own fields, and a label it can learn
        source, target = _collections(document, resolve)
        full = algorithm.with_defaults(document)
        if "dropped" in full["schema"]:  # what schema inference left out: a note, not the model's schema
            full = {**full, "schema": {k: v for k, v in full["schema"].items() if k != "dropped"}}
        return cls(full, source, target, algorithm, parser)

    @classmethod
    def from_message(cls, message: Any, algorithms: AlgorithmClasses, resolve: Resolver) -> TrainingJob:
        """The job a message carries, as it was built at submission. A plain document (queued by
        the previous version, defaults applied there) has its collections resolved here."""
        parts = cls._parts(message, cls.kind)
        if parts is None:  # the previous version's plain document
            document = algorithms(message.get("name")).with_defaults(message)
            parts = (document, *_collections(document, resolve))
        document, source, target = parts
        algorithm = algorithms(document.get("name"))
        return cls(document, source, target, algorithm, algorithm.parse(document["schema"]))


@dataclass(frozen=True)
class ScoringJob(_Job, kind="predictall", task="prediction_service.predict_all"):
    """A batch scoring job: a stored model's predictions for a collection, into another."""

    @property
    def modelkey(self) -> str:
        return self.document["modelkey"]

    @property
    def explain(self) -> bool:
        """Whether each scored document gets its explanation (``"explain": true``)."""
        return bool(self.document.get("explain", False))

    @classmethod
    def from_document(cls, document: Any, resolve: Resolver) -> ScoringJob:
        """The job a client's scoring request asks for, or the 4xx naming what is wrong. The
        output is replaced whole, so it may not be the input."""
        PREDICTALL_VALIDATOR.check(document, "scoring request")
        source, target = _collections(document, resolve)
        if source.same_target(target):
            raise InvalidRequest(
                "'outputCollection' must differ from 'inputCollection': it is replaced whole (both name "
                f"{source} on the same server)"
            )
        return cls(copy.deepcopy(document), source, target)

    @classmethod
    def from_message(cls, message: Any, resolve: Resolver) -> ScoringJob:
        """The job a message carries; a plain document (the previous version's) resolved here."""
        parts = cls._parts(message, cls.kind)
        if parts is None:  # the previous version's plain document
            parts = (copy.deepcopy(dict(message)), *_collections(message, resolve))
        return cls(*parts)


# A model by its key or a named model's reference: (its key, the model as stored); NotFound if none.
StoredModels = Callable[[str], tuple[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class ComparisonJob(_Job, kind="comparison", task="prediction_service.compare"):
    """Two or more models scored on the same rows: the held-out rows of the newest one's training
    (its input, fields, seed and fraction), so their figures compare fairly."""

    @property
    def models(self) -> list[str]:
        """The models' keys, in the order asked."""
        return list(self.document["models"])

    @property
    def heldout_of(self) -> str:
        """The key of the newest model, whose held-out rows every model is scored on."""
        return self.document["heldout_of"]

    @classmethod
    def from_document(cls, document: Any, stored: StoredModels, resolve: Resolver) -> ComparisonJob:
        """The comparison a client asks for ({"models": [key or reference, ...]}), or the 4xx
        naming what is wrong: not 2 to MAX_COMPARED distinct models, one that does not exist,
        models of different tasks, a newest model whose input cannot be read."""
        refs = document.get("models") if isinstance(document, Mapping) else None
        if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
            raise InvalidRequest('a comparison is {"models": ["<model key or reference>", ...]}')
        found = dict(stored(ref) for ref in refs)
        if not 2 <= len(found) <= MAX_COMPARED:
            raise InvalidRequest(f"'models': name from 2 to {MAX_COMPARED} different models, not {len(found)}")
        tasks = {key: model.get("task") for key, model in found.items()}
        if len(set(tasks.values())) > 1:
            said = ", ".join(f"{key} {task}" for key, task in tasks.items())
            raise InvalidRequest(f"'models': models of one task compare on its metrics; these differ ({said})")
        newest = max(found, key=lambda key: str(found[key].get("created_at") or ""))
        inputs = (found[newest].get("parameters") or {}).get("inputCollection")
        source = resolve(inputs, "inputCollection")
        return cls({"models": list(found), "heldout_of": newest, "inputCollection": inputs}, source, None)

    @classmethod
    def from_message(cls, message: Any, resolve: Resolver) -> ComparisonJob:
        parts = cls._parts(message, cls.kind)
        if parts is None:
            raise InvalidRequest("a comparison job's message is typed (format prediction_service.job/2)")
        return cls(*parts)
