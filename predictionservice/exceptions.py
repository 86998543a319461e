"""The service's one error type and its specific names.

Every failure a client can cause or see is a :class:`ServiceError` with a ``code``; ``STATUS``
maps codes to HTTP statuses, and ``code_for_status`` names the answers whose status the HTTP layer
chose itself. The core modules raise these without knowing anything about HTTP.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

STATUS: dict[str, int] = {
    "invalid_request": 400,  # the general code of its status comes first (see code_for_status)
    "invalid_json": 400,
    "invalid_record": 400,
    "invalid_schema": 400,
    "invalid_dataset": 400,
    "unknown_algorithm": 400,
    "forbidden_target": 400,
    "invalid_host": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "too_many_requests": 429,
    "service_unavailable": 503,
    "internal_error": 500,
    # Refused by the HTTP server itself, before the app sees the request (see modelserver.py).
    "request_timeout": 408,
    "uri_too_long": 414,
    "not_implemented": 501,
    "http_version_not_supported": 505,
}
_GENERAL_CODE: dict[int, str] = {status: code for code, status in reversed(STATUS.items())}


def shown(value: str, limit: int = 100, *, quote: bool = True) -> str:
    """A client's name, key, path or value as an error message echoes it, bounded: a 100 kB
    header or a 200 kB id is not sent back whole, and the count says how much was cut."""
    text = repr(value) if quote else value
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} characters)"


def close_names(name: str, names: Iterable[str], n: int = 2) -> list[str]:
    """The names a mistyped one was most likely meant to be: a case slip first ('Y' for 'y'),
    then the closest spellings; none for a name too long to be a slip of one."""
    candidates = list(names)
    if len(name) > 200:
        return []
    same_case = [c for c in candidates if c.lower() == name.lower()]
    return same_case[:n] or difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)


def did_you_mean(name: str, names: Iterable[str], prefix: str = "") -> str:
    """' (did you mean 'regParam'?)' when a name is close to one of names, else ''; each close
    name shown behind prefix (a collection's 'db.')."""
    close = close_names(name, names)
    return f" (did you mean {' or '.join(repr(prefix + c) for c in close)}?)" if close else ""


def code_for_status(status: int) -> str:
    """The code of an answer whose status the HTTP layer chose itself (Werkzeug's or cheroot's
    own refusals, raised as no ServiceError): the first code of that status in STATUS."""
    return _GENERAL_CODE.get(status, "invalid_request" if status < 500 else "internal_error")


class ServiceError(Exception):
    """An error with a stable code, a message a person can act on and optional details."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: list[Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or []

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(ServiceError):
    code = "invalid_request"


class InvalidJSON(ServiceError):
    code = "invalid_json"


class InvalidSchema(ServiceError):
    """A job's ``schema`` block (or an inferred one) cannot be used."""

    code = "invalid_schema"


class InvalidDataset(ServiceError):
    """A dataset upload that cannot be loaded; the target collection is left as it was."""

    code = "invalid_dataset"


class UnknownAlgorithm(ServiceError):
    code = "unknown_algorithm"


class ForbiddenTarget(ServiceError):
    """A database, collection or MongoDB host the API may not touch."""

    code = "forbidden_target"


class InvalidHost(ServiceError):
    """A Host header the server does not answer to (DNS rebinding, or a missing allowed_hosts)."""

    code = "invalid_host"


class Unauthorized(ServiceError):
    code = "unauthorized"


class Forbidden(ServiceError):
    """A page's form posted without its CSRF token, or from another site."""

    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class MethodNotAllowed(ServiceError):
    code = "method_not_allowed"


class Conflict(ServiceError):
    """The request meets stored data it may not overwrite (an append whose _id is taken)."""

    code = "conflict"


class UnknownName(NotFound):
    """A reference to a named model (docs/API.md, "Named models") no registry entry has."""


class UnknownAlias(NotFound):
    """A name's alias that points nowhere: the message names the aliases it has."""


class UnknownVersion(NotFound):
    """A version a name does not have (never made, or its model deleted): the message names those it has."""


class BadName(InvalidRequest):
    """A model name not of the registry's form (1-64 of A-Za-z0-9._-, not a model key's 32 hex)."""


class BadAlias(InvalidRequest):
    """An alias not of the form [a-z][a-z0-9_-]{0,31}."""


class AliasInUse(Conflict):
    """A model an alias points to cannot be deleted: the alias must move first."""


class RetrainSkipped(Conflict):
    """A retrain of a name while a job of that name is still queued or running: skipped (and
    the skip recorded in the name's retrains); the message and details name the running job."""


class GateError(ServiceError):
    """The promotion gate could not compare a new version with production (a model not in the
    store, tasks that differ, no metric): recorded in the version's decision, never an answer."""


class NotExplainable(Conflict):
    """A model stored before explanations existed: it must be retrained to be explained."""


class TooManyRequests(ServiceError):
    """The service is full for now (the job queue); ``retry_after`` seconds is worth a wait."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, details: list[Any] | None = None):
        super().__init__(message, details=details)
        self.retry_after = retry_after


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"


class ServiceUnavailable(ServiceError):
    code = "service_unavailable"


# Why a field of a record cannot be encoded: the same words online (RecordError) and in the
# error column of a Spark job (sparkfeatures), so a batch's bad-row reasons read like a 400's.
NOT_A_NUMBER = "is not a number"
NOT_FINITE = "is not a finite number"
NOT_A_CATEGORY = "has a value that is not one of the schema's categories"
IS_MISSING = "is missing"
TOO_LONG = "is a string too long to be a number"
IS_NULL = "is null"


class RecordError(ServiceError):
    """A record that cannot be encoded; names the field (and, in a batch, the record's index).

    ``problem`` is what the client is told (the value and the closest categories, null as null);
    ``reason`` is the shorter words a Spark job's error column has for the same row, where a null
    and an absent field look alike and bad rows are counted by reason, never by value."""

    code = "invalid_record"

    def __init__(self, field: str, problem: str, index: int | None = None, *, reason: str | None = None):
        self.field = field
        self.problem = problem
        self.reason = reason or problem
        self.index = index
        where = f"record {index}: " if index is not None else ""
        super().__init__(
            f"{where}field '{field}' {problem}",
            details=[{"field": field, "problem": problem, **({"index": index} if index is not None else {})}],
        )

    def at(self, index: int) -> RecordError:
        """The same error, placed at a record's position in a batch."""
        return type(self)(self.field, self.problem, index, reason=self.reason)

    @property
    def reason_message(self) -> str:
        """The error as a Spark job's error column words it."""
        return f"field '{self.field}' {self.reason}"


class RecordErrors(ServiceError):
    """Several problems of a request's records at once (docs/API.md, "Partial batches"): every
    bad record's index, field and problem in ``details``, up to ``limit`` of them; the message
    names the first few and how many there are in all."""

    code = "invalid_record"

    def __init__(self, problems: list[RecordError], limit: int, *, records: int):
        listed = problems[:limit]
        details = [error.details[0] for error in listed]
        first = "; ".join(error.message for error in listed[:5])
        more = f"; ... ({len(problems)} problems in all)" if len(problems) > 5 else ""
        unlisted = f" (the first {limit} in details)" if len(problems) > limit else ""
        what = f"{records} records cannot" if records != 1 else "a record cannot"
        super().__init__(f"{what} be scored: {first}{more}{unlisted}", details=details)


class MissingField(RecordError):
    def __init__(self, field: str, problem: str = IS_MISSING, index: int | None = None, *, reason: str | None = None):
        super().__init__(field, problem, index, reason=reason)


class NotNumeric(RecordError):
    pass


class UnknownCategory(RecordError):
    pass
