"""JSON in and out of HTTP: the one way a view reads a body and writes an answer."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from flask import Response, request

from predictionservice.exceptions import InvalidJSON, PayloadTooLarge, UnsupportedMediaType
from predictionservice.exceptions import shown as shown  # the web modules import it from here
from predictionservice.validation import bracket_count, parse_json
from web.services import services

JSON = "application/json"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(payload), status=status, mimetype=JSON, headers=headers)


def json_bytes(payload: Any) -> bytes:
    """Compact JSON, by orjson (numpy numbers included) in a twentieth of the standard encoder's
    time; what orjson cannot encode (keys that are not strings, integers past 64 bits) by the
    standard encoder."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def json_body(*, untyped: bool = False) -> Any:
    """The request's JSON document; 415 unless it was sent as JSON (or, when untyped is allowed,
    with no Content-Type at all: the Open Inference Protocol's clients send none)."""
    mimetype = request.mimetype
    if mimetype != JSON and not mimetype.endswith("+json") and not (untyped and not mimetype):
        raise UnsupportedMediaType(
            f"the body must be JSON sent with 'Content-Type: application/json' (got {mimetype or 'none'!r})"
        )
    data = body_bytes()
    brackets = check_containers(data, services().params["max_json_containers"])
    return parse_json(data, brackets=brackets)


# A JSON string, escapes and all: what a bracket inside of it is not.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def check_containers(data: bytes, limit: int) -> int:
    """Refuse a body of more than limit arrays and objects before it is parsed. Each costs the
    parser a Python object (about 100 bytes) and the depth check a visit, whatever its size in
    the body: 4 MB of arrays nested 60 deep made 2 million of them, 190 MB and 2-3 s a request.
    Counting the brackets is a scan at C speed; only a body with more brackets than the limit
    has its strings taken out (a bracket in a string is no container) and is counted again.
    Returns the first count (brackets in strings included), which parse_json uses as well."""
    brackets = bracket_count(data)
    if brackets <= limit:
        return brackets
    if bracket_count(_STRING.sub(b"", data)) > limit:
        raise InvalidJSON(
            f"the body holds more than {limit} arrays and objects, more than any request needs "
            "(max_json_containers): send records as flat objects and V2 tensor data flat ([v, ...])"
        )
    return brackets


def body_bytes() -> bytes:
    """The body, at most the route's limit. A streamed (chunked) body has no Content-Length for
    the guard to check and Werkzeug cuts it at the limit without a word: one byte past the limit
    makes it 413 too, never a truncated document."""
    data = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise PayloadTooLarge(f"the body is larger than this route takes ({limit} bytes)")
    return data
