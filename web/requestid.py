"""Request ids: every answer carries ``X-Request-ID``, the client's own when it sent a usable one
(so a caller's trace id follows the request), else one made here. The id is also in the access
log line (modelserver's logger reads it from the WSGI environ) and in the record of a job the
request submitted, so one id ties a client's call, the log and the job together."""

from __future__ import annotations

import random
import re

from flask import Response, g, request

from predictionservice.apikeys import TOKEN_KEY
from predictionservice.jobqueue import Origin

HEADER = "X-Request-ID"
ENVIRON_KEY = "prediction_service.request_id"
_WSGI_HEADER = "HTTP_" + HEADER.upper().replace("-", "_")  # where the WSGI environ holds the header
# What an id taken from a client may be: short, printable, nothing a log line or header could
# be confused by (no spaces, quotes or control characters). Anything else is replaced.
_USABLE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# An id names a request, it guards nothing: 128 bits from a Mersenne Twister (seeded from the
# OS), where uuid4's read of os.urandom per request was 18 % of a single-record prediction's
# time under 16 connections (a system call, and the GIL to win back after it).
_IDS = random.Random()


def new_id() -> str:
    """32 hex digits, the form uuid4().hex had."""
    return f"{_IDS.getrandbits(128):032x}"


def begin() -> None:
    """The request's id, taken or made, kept in the WSGI environ for the log and the views."""
    environ = request.environ
    given = environ.get(_WSGI_HEADER, "")
    environ[ENVIRON_KEY] = given if _USABLE.fullmatch(given) else new_id()


def current() -> str | None:
    return request.environ.get(ENVIRON_KEY)


def origin() -> Origin:
    """Who submits a job in this request and the request's id, for the job's record: an API key
    (its share of the queue is the key's, wherever it is sent from), else the client's address
    (no keys, or the service's one token)."""
    principal = g.get("principal")
    if principal is not None and principal.id and principal.id != TOKEN_KEY:
        return Origin(f"key {principal.name} ({principal.id})", current())
    return Origin(request.remote_addr, current())


def stamp(response: Response) -> Response:
    request_id = current()
    if request_id is not None:
        response.headers[HEADER] = request_id
    return response
