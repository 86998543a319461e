"""Datasets, the operations: the collections of the service's MongoDB listed, described, given an
inferred schema, exported and dropped, with no web framework. The routes of ``/datasets/`` and
the pages (web/) only parse, call ``Datasets`` and render; a scheduler can call it the same way.

``Datasets`` is built once from its collaborators: the MongoDB clients (``MongoClients``), the
service's MongoDB URI (the one a path's 'db/collection' names), the schema sample's size and
label cap, and the schema inference function (the chapter's ``dataparser.schema_from_documents``, passed
in: this library imports no chapter file)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from predictionservice import datasetloader
from predictionservice.alloweddbs import AllowedDatabases
from predictionservice.datasetreaders import MAX_COLUMNS, MAX_HEADER_CHARS, BadLines
from predictionservice.defaults import SYSTEM_DATABASES
from predictionservice.exceptions import InvalidRequest, NotFound, shown
from predictionservice.mongotarget import CollectionRef, MongoClients, check_namespace, check_new_name
from predictionservice.validation import FIELD_KEY

SAMPLE_DOCS = 5
FIELD_SCAN_DOCS = 100
HIDDEN_PREFIXES = ("__", "system.")  # loads and Spark writes in progress, MongoDB's own
EXPORT_BATCH = 500  # documents per cursor batch and per chunk sent: what an export holds at once
EXPORT_FORMATS = ("csv", "jsonl")
# A field named as an id: _id, id, uuid, guid, or ending in _id, -id, " id" or Id (customerId).
ID_NAME = re.compile(r"(?i:^_?id$|^uuid$|^guid$|[_\-\s]id$)|[a-z0-9]Id$")
LOAD_MODES = ("replace", "append")  # an upload replaces the collection or adds to it
ON_ERROR = ("fail", "skip")  # a CSV's bad lines refuse the file, or are skipped and named
# A cell a spreadsheet would run as a formula (=HYPERLINK(...), +cmd|...): exported with a
# leading quote, which shows the text as written (OWASP, CSV injection). CSV only: JSONL is data.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Datasets:
    """The service's datasets, reached through its MongoDB clients."""

    def __init__(
        self,
        mongo: MongoClients,
        mongodb_uri: str,
        infer: Callable[..., dict[str, Any]],
        schema_sample_docs: int,
        schema_max_label_values: int,
        allowed: AllowedDatabases | None = None,
        *,
        max_columns: int = MAX_COLUMNS,
        max_header_chars: int = MAX_HEADER_CHARS,
    ):
        self.mongo = mongo
        self.mongodb_uri = mongodb_uri
        self.infer = infer
        self.schema_sample_docs = schema_sample_docs
        self.schema_max_label_values = schema_max_label_values
        self.allowed = allowed  # the databases the service is given (None: every one)
        self.max_columns = max_columns  # an upload's fields, at most
        self.max_header_chars = max_header_chars  # a CSV header line's length, at most

    def listing(self) -> list[dict[str, Any]]:
        """Every collection the service can reach, with its count (the system databases never,
        nor a load or a Spark write in progress)."""
        found = []
        with self.mongo.lease(self.mongodb_uri) as client:
            names = sorted(client.list_database_names())
            for db in self.allowed.visible(names) if self.allowed is not None else names:
                if db.lower() in SYSTEM_DATABASES:
                    continue
                for name in sorted(client[db].list_collection_names()):
                    if not name.startswith(HIDDEN_PREFIXES):
                        count = client[db][name].estimated_document_count()
                        found.append({"dataset": f"{db}.{name}", "db": db, "collection": name, "count": count})
        return found

    def ref(self, db: str, collection: str) -> CollectionRef:
        """The collection a dataset's 'db' and 'collection' name. CherryPy hands an encoded slash
        on as '%2F' (a plain '/' never reaches a segment): a name holding one is a confused path,
        refused rather than created as the database 'e2e%2Fx'."""
        for name in (db, collection):
            if "/" in name or "%2f" in name.lower():
                raise InvalidRequest(f"dataset name {shown(name)} is not allowed: no '/', encoded or not")
            if len(name) > 255:
                raise InvalidRequest(f"dataset name {shown(name)} is not allowed: longer than 255 characters")
        check_namespace(db, collection)
        return CollectionRef(self.mongodb_uri, db, collection)

    @contextmanager
    def existing(self, db: str, collection: str) -> Iterator[Any]:
        """The dataset's collection, for the with-block; NotFound when it does not exist."""
        ref = self.ref(db, collection)
        if self.allowed is not None:
            self.allowed.check(db)
        with self.mongo.collection(ref) as coll:
            if not coll.database.list_collection_names(filter={"name": collection}):
                raise NotFound(f"dataset {shown(ref.namespace)} not found")
            yield coll

    def writable(self, db: str, collection: str) -> CollectionRef:
        """The collection a write names (PUT /datasets/...): in a database the service is given,
        or in a new one, which becomes the service's."""
        ref = self.ref(db, collection)
        if self.allowed is not None:
            self.allowed.check_write(db, self.database_exists)
        return ref

    def database_exists(self, db: str) -> bool:
        with self.mongo.lease(self.mongodb_uri) as client:
            return db in client.list_database_names()

    def load(self, db: str, collection: str, source: IO[bytes], media: str, mode: str, on_error: str) -> dict[str, Any]:
        """Loads a CSV (``media`` "csv") or a JSON array of objects ("json") read from source into
        the collection, all or nothing (``mode`` replace or append); a CSV's bad lines refuse the
        file (``on_error`` fail) or are skipped and named (skip). The answer of PUT /datasets/:
        inserted, dataset, mode, and for skip the lines skipped."""
        ref = self.writable(db, collection)
        check_new_name(db, collection)
        if mode not in LOAD_MODES:
            raise InvalidRequest(f"'mode' must be 'replace' or 'append', not {shown(mode)}")
        if on_error not in ON_ERROR:
            raise InvalidRequest(f"'on_error' must be 'fail' or 'skip', not {shown(on_error)}")
        bad = BadLines(skip=on_error == "skip")
        if media == "json" and bad.skip:
            raise InvalidRequest(
                "'on_error=skip' is for a CSV upload (text/csv); a JSON dataset is loaded whole or not"
            )
        with self.mongo.collection(ref) as target:
            if media == "csv":
                inserted = datasetloader.load_csv(
                    target, source, mode=mode, bad=bad, max_columns=self.max_columns,
                    max_header_chars=self.max_header_chars,
                )  # fmt: skip
            else:  # read a record at a time, never parsed whole
                inserted = datasetloader.load_json(target, source, mode=mode, max_fields=self.max_columns)
        answer: dict[str, Any] = {"inserted": inserted, "dataset": ref.namespace, "mode": mode}
        if bad.skip:
            answer.update(skipped=bad.count, bad_lines=bad.named)
        return answer

    def describe(self, db: str, collection: str) -> dict[str, Any]:
        """A dataset's count, fields and sample: what the API and the datasets page show."""
        with self.existing(db, collection) as coll:
            docs = list(coll.find({}, limit=FIELD_SCAN_DOCS))
            count = coll.count_documents({})
        return {
            "dataset": f"{db}.{collection}",
            "count": count,
            "fields": field_kinds(docs),
            "sample": [mongo_json(d) for d in docs[:SAMPLE_DOCS]],
        }

    def label_choices(self, db: str, collection: str) -> list[str]:
        """The fields a person may pick as a label, over a sample: text or numbers, never the
        document id, a field named as an id (``customer_id``, ``userId``, ``uuid``) or text that
        differs in every document (an id by its values), nor nested, mixed or always-null ones."""
        with self.existing(db, collection) as coll:
            docs = list(coll.find({}, limit=FIELD_SCAN_DOCS))
        kinds = field_kinds(docs)
        choices = []
        for name, kind in kinds.items():
            if kind not in ("string", "number") or ID_NAME.search(name):
                continue
            if kind == "string" and len(docs) > 1 and len({str(d.get(name)) for d in docs}) == len(docs):
                continue
            choices.append(name)
        return sorted(choices)

    def schema(
        self, db: str, collection: str, label: str | None, task: str | None = None, **choices: Iterable[str]
    ) -> dict[str, Any]:
        """The schema block of a dataset with label as its label (the API's and the training
        page's); task ('classification' or 'regression') overrides what the label's kind decides,
        and a person's choices (``categorical``, ``exclude``, ``ignore_unknown``: field names) what
        the inference makes of the features."""
        if not label:
            raise InvalidRequest("the query parameter 'label' (the label field) is required")
        if len(label) > FIELD_KEY["maxLength"]:
            raise InvalidRequest(
                f"'label' is {len(label)} characters; a field name has at most {FIELD_KEY['maxLength']}"
            )
        with self.existing(db, collection) as coll:
            documents = schema_documents(coll, self.schema_sample_docs)
            return self.infer(documents, label, task=task, max_label_values=self.schema_max_label_values, **choices)

    def export(self, db: str, collection: str, fmt: str) -> Iterator[str]:
        """The whole collection as CSV or JSON lines, a batch at a time: scored results must be
        taken away whatever their size, so memory holds one batch, never the collection. The
        format and the dataset are checked now (a 404 before an answer starts); the collection
        is leased for as long as the chunks are read."""
        if fmt not in EXPORT_FORMATS:
            raise InvalidRequest(f"'format' must be 'csv' or 'jsonl', not {shown(fmt)}")
        with self.existing(db, collection):
            pass

        def chunks() -> Iterator[str]:
            with self.existing(db, collection) as coll:
                yield from csv_chunks(coll, csv_header(coll)) if fmt == "csv" else jsonl_chunks(coll)

        return chunks()

    def drop(self, db: str, collection: str) -> None:
        with self.existing(db, collection) as coll:
            coll.drop()


def schema_documents(coll: Any, sample: int) -> Iterator[dict[str, Any]]:
    """What a schema is inferred from: the whole collection when it is small, else a random
    sample of that many documents (a scan of every document is not what one GET may cost)."""
    if coll.estimated_document_count() <= sample:
        return coll.find({}, {"_id": 0})
    return coll.aggregate([{"$sample": {"size": sample}}, {"$project": {"_id": 0}}])


def csv_header(coll: Any) -> list[str]:
    """The CSV columns: every field of a sample of documents in first-seen order, nested objects
    as dotted columns (a scored document's value.age), _id left out."""
    columns: dict[str, None] = {}
    for doc in coll.find({}, {"_id": 0}, limit=FIELD_SCAN_DOCS):
        columns.update(dict.fromkeys(flat(doc)))
    return list(columns)


def flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def cell(value: Any) -> Any:
    """A document's value as a CSV cell: lists and objects as JSON, text made inert."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(mongo_json(value))
    return inert(mongo_json(value))


def inert(value: Any) -> Any:
    """A text cell a spreadsheet shows as text, never evaluates: see FORMULA_STARTS."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_chunks(coll: Any, header: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180; and a cell holding a CR is quoted
    writer.writerow([inert(column) for column in header])
    for count, doc in enumerate(coll.find({}, {"_id": 0}, batch_size=EXPORT_BATCH), 1):
        row = flat(doc)
        writer.writerow([cell(row.get(column)) for column in header])
        if count % EXPORT_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_chunks(coll: Any) -> Iterator[str]:
    lines: list[str] = []
    for doc in coll.find({}, batch_size=EXPORT_BATCH):
        lines.append(json.dumps(mongo_json(doc), separators=(",", ":")) + "\n")
        if len(lines) >= EXPORT_BATCH:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def field_kinds(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Each field's JSON kind over a sample; 'mixed' where the sample disagrees (nulls aside)."""
    fields: dict[str, str] = {}
    for doc in docs:
        for key, value in doc.items():
            kind = kind_of(value)
            if fields.get(key, kind) != kind and kind != "null":
                fields[key] = "mixed" if fields[key] != "null" else kind
            else:
                fields.setdefault(key, kind)
    return fields


def mongo_json(value: Any) -> Any:
    """A document as plain JSON (ObjectId and dates as strings)."""
    if isinstance(value, dict):
        return {k: mongo_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mongo_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


KINDS = ((bool, "boolean"), ((int, float), "number"), (str, "string"), (dict, "object"), (list, "array"))


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for types, name in KINDS if isinstance(value, types)), type(value).__name__)
