"""Datasets over HTTP: collections of the service's MongoDB, uploaded (CSV or JSON, all or
nothing), described, given an inferred schema, exported and dropped. The operations are the
core's (``predictionservice.datasets.Datasets``, built once in ``services()``); these routes
parse the request, call it and send the answer."""

from __future__ import annotations

import io
from urllib.parse import quote

from flask import Blueprint, Response, request, stream_with_context

from predictionservice.exceptions import InvalidDataset, UnsupportedMediaType
from web.jsonio import JSON, json_response
from web.services import services

bp = Blueprint("datasets", __name__)

CSV_TYPES = ("text/csv", "application/csv", "text/plain")
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
# curl -T sends no Content-Type; curl -d sends a form type and strips the file's newlines
SEND_AS = "send the file as it is: curl -X PUT --data-binary @file.csv -H 'Content-Type: text/csv'"


@bp.get("/datasets/", strict_slashes=False)
def list_datasets() -> Response:
    """Every collection the API can reach, with its count; the system databases never."""
    return json_response({"datasets": services().datasets.listing()})


@bp.get("/datasets/<db>/<collection>/export")
def export_dataset(db: str, collection: str) -> Response:
    """The whole collection, streamed a batch at a time (a generator response): memory holds one
    batch, never the collection; a missing dataset is a 404 before the answer starts."""
    fmt = request.args.get("format", "csv")
    chunks = services().datasets.export(db, collection, fmt)
    headers = {"Content-Disposition": attachment(f"{db}.{collection}.{fmt}"), "X-Content-Type-Options": "nosniff"}
    return Response(stream_with_context(chunks), mimetype=EXPORT_TYPES[fmt], headers=headers)


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


@bp.put("/datasets/<db>/<collection>")
def put_dataset(db: str, collection: str) -> Response:
    mimetype = request.mimetype
    if mimetype in CSV_TYPES:
        if not request.content_length and request.content_length is not None:
            raise InvalidDataset("empty input: expected a header line and at least one row")
        media, source = "csv", io.BufferedReader(request.stream)
    elif mimetype == JSON:
        media, source = "json", request.stream
    else:
        services().datasets.writable(db, collection)  # a database not given to the service is said first
        raise UnsupportedMediaType(
            f"a dataset is 'text/csv' or 'application/json' (an array of objects), not {mimetype or 'none'!r}"
            + (f"; {SEND_AS}" if mimetype in ("", "application/x-www-form-urlencoded") else "")
        )
    mode, on_error = request.args.get("mode", "replace"), request.args.get("on_error", "fail")
    return json_response(services().datasets.load(db, collection, source, media, mode, on_error))


@bp.get("/datasets/<db>/<collection>")
def describe_dataset(db: str, collection: str) -> Response:
    return json_response(services().datasets.describe(db, collection))


@bp.get("/datasets/<db>/<collection>/schema")
def dataset_schema(db: str, collection: str) -> Response:
    label, task = request.args.get("label"), request.args.get("task")
    return json_response(services().datasets.schema(db, collection, label, task))


@bp.delete("/datasets/<db>/<collection>")
def delete_dataset(db: str, collection: str) -> Response:
    services().datasets.drop(db, collection)
    return Response(status=204)
