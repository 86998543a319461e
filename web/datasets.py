"""Datasets: collections of the service's MongoDB, uploaded (CSV or JSON, all or nothing),
described, given an inferred schema, and dropped."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request, stream_with_context

from dataparser import schema_from_documents
from predictionservice import datasetloader
from predictionservice.defaults import SYSTEM_DATABASES
from predictionservice.exceptions import InvalidDataset, InvalidRequest, NotFound, UnsupportedMediaType
from predictionservice.mongotarget import CollectionRef, check_new_name
from predictionservice.validation import FIELD_KEY
from web.jsonio import JSON, json_response, shown
from web.services import services

bp = Blueprint("datasets", __name__)

SAMPLE_DOCS = 5
FIELD_SCAN_DOCS = 100
HIDDEN_PREFIXES = ("__", "system.")  # loads and Spark writes in progress, MongoDB's own
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
EXPORT_BATCH = 500  # documents per cursor batch and per chunk sent: what an export holds at once
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
# curl -T sends no Content-Type; curl -d sends a form type and strips the file's newlines
SEND_AS = "send the file as it is: curl -X PUT --data-binary @file.csv -H 'Content-Type: text/csv'"


@bp.get("/datasets/", strict_slashes=False)
def list_datasets() -> Response:
    """Every collection the API can reach, with its count; the system databases never."""
    return json_response({"datasets": collections()})


@bp.get("/datasets/<db>/<collection>/export")
def export_dataset(db: str, collection: str) -> Response:
    """The whole collection, streamed a batch at a time (a generator response): scored results
    must be taken away whatever their size, so memory holds one batch, never the collection."""
    fmt = request.args.get("format", "csv")
    if fmt not in EXPORT_TYPES:
        raise InvalidRequest(f"'format' must be 'csv' or 'jsonl', not {shown(fmt)}")
    with existing(db, collection):
        pass  # a missing dataset is a 404 before the answer starts

    def body() -> Iterator[str]:  # the collection is leased for as long as the answer streams
        with existing(db, collection) as coll:
            yield from _csv_chunks(coll, csv_header(coll)) if fmt == "csv" else _jsonl_chunks(coll)

    headers = {"Content-Disposition": attachment(f"{db}.{collection}.{fmt}"), "X-Content-Type-Options": "nosniff"}
    return Response(stream_with_context(body()), mimetype=EXPORT_TYPES[fmt], headers=headers)


def attachment(name: str) -> str:
    """A Content-Disposition naming the file a download is saved as (RFC 6266): the name cleaned
    to letters, digits and '._-' (a quote or ';' in a collection name cannot add parameters, a
    line break cannot end the header, and no name makes the header unencodable, a 500); a name
    beyond ASCII also as its UTF-8 form in filename* (RFC 5987), the ASCII filename for old clients."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._") or "export"
    fallback = "".join(c if c.isascii() else "_" for c in cleaned)
    if fallback == cleaned:
        return f'attachment; filename="{cleaned}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


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


# A cell a spreadsheet would run as a formula (=HYPERLINK(...), +cmd|...): exported with a
# leading quote, which shows the text as written (OWASP, CSV injection). CSV only: JSONL is data.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(mongo_json(value))
    return inert(mongo_json(value))


def inert(value: Any) -> Any:
    """A text cell a spreadsheet shows as text, never evaluates: see FORMULA_STARTS."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _csv_chunks(coll: Any, header: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180; and a cell holding a CR is quoted
    writer.writerow([inert(column) for column in header])
    for count, doc in enumerate(coll.find({}, {"_id": 0}, batch_size=EXPORT_BATCH), 1):
        row = flat(doc)
        writer.writerow([_cell(row.get(column)) for column in header])
        if count % EXPORT_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _jsonl_chunks(coll: Any) -> Iterator[str]:
    lines: list[str] = []
    for doc in coll.find({}, batch_size=EXPORT_BATCH):
        lines.append(json.dumps(mongo_json(doc), separators=(",", ":")) + "\n")
        if len(lines) >= EXPORT_BATCH:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


@bp.put("/datasets/<db>/<collection>")
def put_dataset(db: str, collection: str) -> Response:
    ref = dataset_ref(db, collection)
    check_new_name(db, collection)
    mode = request.args.get("mode", "replace")
    if mode not in ("replace", "append"):
        raise InvalidRequest(f"'mode' must be 'replace' or 'append', not {shown(mode)}")
    params = services().params
    mimetype = request.mimetype
    if mimetype in CSV_TYPES:
        if not request.content_length and request.content_length is not None:
            raise InvalidDataset("empty input: expected a header line and at least one row")
        with services().mongo.collection(ref) as target:
            inserted = datasetloader.load_csv(
                target, io.BufferedReader(request.stream), mode=mode,
                max_columns=params["max_dataset_columns"], max_header_chars=params["max_csv_header_chars"],
            )  # fmt: skip
    elif mimetype == JSON:  # read a record at a time, never parsed whole
        with services().mongo.collection(ref) as target:
            inserted = datasetloader.load_json(
                target, request.stream, mode=mode, max_fields=params["max_dataset_columns"]
            )
    else:
        raise UnsupportedMediaType(
            f"a dataset is 'text/csv' or 'application/json' (an array of objects), not {mimetype or 'none'!r}"
            + (f"; {SEND_AS}" if mimetype in ("", "application/x-www-form-urlencoded") else "")
        )
    return json_response({"inserted": inserted, "dataset": ref.namespace, "mode": mode})


@bp.get("/datasets/<db>/<collection>")
def describe_dataset(db: str, collection: str) -> Response:
    return json_response(description(db, collection))


def description(db: str, collection: str) -> dict[str, Any]:
    """A dataset's count, fields and sample: what the API and the datasets page show."""
    with existing(db, collection) as coll:
        docs = list(coll.find({}, limit=FIELD_SCAN_DOCS))
        count = coll.count_documents({})
    return {
        "dataset": f"{db}.{collection}",
        "count": count,
        "fields": field_kinds(docs),
        "sample": [mongo_json(d) for d in docs[:SAMPLE_DOCS]],
    }


@bp.get("/datasets/<db>/<collection>/schema")
def dataset_schema(db: str, collection: str) -> Response:
    return json_response(inferred_schema(db, collection, request.args.get("label"), request.args.get("task")))


def inferred_schema(db: str, collection: str, label: str | None, task: str | None = None) -> dict[str, Any]:
    """The schema block of a dataset with label as its label (the API's and the training page's);
    task ('classification' or 'regression') overrides what the label's kind decides."""
    if not label:
        raise InvalidRequest("the query parameter 'label' (the label field) is required")
    if len(label) > FIELD_KEY["maxLength"]:
        raise InvalidRequest(f"'label' is {len(label)} characters; a field name has at most {FIELD_KEY['maxLength']}")
    params = services().params
    with existing(db, collection) as coll:
        documents = schema_documents(coll, params["schema_sample_docs"])
        return schema_from_documents(documents, label, task=task, max_label_values=params["schema_max_label_values"])


def collections() -> list[dict[str, Any]]:
    """Every collection the API can reach, with its count (the system databases never, nor a
    load or a Spark write in progress)."""
    found = []
    with services().mongo.lease(services().params["mongodb_uri"]) as client:
        for db in sorted(client.list_database_names()):
            if db.lower() in SYSTEM_DATABASES:
                continue
            for name in sorted(client[db].list_collection_names()):
                if not name.startswith(HIDDEN_PREFIXES):
                    count = client[db][name].estimated_document_count()
                    found.append({"dataset": f"{db}.{name}", "db": db, "collection": name, "count": count})
    return found


def schema_documents(coll: Any, sample: int) -> Iterator[dict[str, Any]]:
    """What a schema is inferred from: the whole collection when it is small, else a random
    sample of that many documents (a scan of every document is not what one GET may cost)."""
    if coll.estimated_document_count() <= sample:
        return coll.find({}, {"_id": 0})
    return coll.aggregate([{"$sample": {"size": sample}}, {"$project": {"_id": 0}}])


@bp.delete("/datasets/<db>/<collection>")
def delete_dataset(db: str, collection: str) -> Response:
    with existing(db, collection) as coll:
        coll.drop()
    return Response(status=204)


def dataset_ref(db: str, collection: str) -> CollectionRef:
    """The collection a dataset route names. CherryPy hands an encoded slash on as '%2F'
    (a plain '/' never reaches a segment): a name holding one is a confused path, refused
    rather than created as the database 'e2e%2Fx'."""
    for name in (db, collection):
        if "/" in name or "%2f" in name.lower():
            raise InvalidRequest(f"dataset name {shown(name)} is not allowed: no '/', encoded or not")
        if len(name) > 255:
            raise InvalidRequest(f"dataset name {shown(name)} is not allowed: longer than 255 characters")
    return services().targets.path_ref(db, collection)


@contextmanager
def existing(db: str, collection: str) -> Iterator[Any]:
    """The dataset's collection, for the with-block; NotFound when it does not exist."""
    ref = dataset_ref(db, collection)
    with services().mongo.collection(ref) as coll:
        if not coll.database.list_collection_names(filter={"name": collection}):
            raise NotFound(f"dataset {shown(ref.namespace)} not found")
        yield coll


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
