"""Datasets over HTTP: collections of the service's MongoDB, uploaded (CSV or JSON, all or
nothing), described, given an inferred schema, exported and dropped. The operations are the
core's (``predictionservice.datasets.Datasets``, built once in ``services()``); these routes
parse the request, call it and send the answer."""

from __future__ import annotations

import io

from flask import Blueprint, Response, request

from predictionservice.exceptions import InvalidDataset, UnsupportedMediaType
from web import downloads
from web.jsonio import JSON, json_response
from web.services import services

bp = Blueprint("datasets", __name__)

CSV_TYPES = ("text/csv", "application/csv", "text/plain")
# curl -T sends no Content-Type; curl -d sends a form type and strips the file's newlines
SEND_AS = "send the file as it is: curl -X PUT --data-binary @file.csv -H 'Content-Type: text/csv'"


@bp.get("/datasets/", strict_slashes=False)
def list_datasets() -> Response:
    """Every collection the API can reach, with its count; the system databases never."""
    return json_response({"datasets": services().datasets.listing()})


@bp.get("/datasets/<db>/<collection>/export")
def export_dataset(db: str, collection: str) -> Response:
    """The whole collection, streamed a batch at a time (web.downloads)."""
    return downloads.export(db, collection, request.args.get("format", "csv"))


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
    choices = {
        "categorical": names(request.args.get("categorical", "")),
        "exclude": names(request.args.get("exclude", "")),
        "ignore_unknown": names(request.args.get("ignore_unknown", "")),
    }
    return json_response(services().datasets.schema(db, collection, label, task, **choices))


def names(text: str) -> list[str]:
    """A comma-separated list of field names (blanks around a name dropped, empty ones too)."""
    return [name.strip() for name in text.split(",") if name.strip()]


@bp.delete("/datasets/<db>/<collection>")
def delete_dataset(db: str, collection: str) -> Response:
    services().datasets.drop(db, collection)
    return Response(status=204)
