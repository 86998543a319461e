"""One error model for the whole app: every non-success is {"error": {"code", "message",
"details"}}, whoever raised it (a view, Werkzeug, Redis, MongoDB or a bug). On the Open
Inference Protocol's routes (/v2/...) the same errors are the protocol's {"error": "<message>"}:
its clients (tritonclient, MLServer's) read the message from there."""

from __future__ import annotations

import logging
import uuid

import pymongo.errors
import redis
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from predictionservice.exceptions import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    ServiceUnavailable,
    TooManyRequests,
    UnsupportedMediaType,
    code_for_status,
)
from predictionservice.openinference import PATH_PREFIX
from web.jsonio import json_response, shown

log = logging.getLogger("prediction_service")


def reply(error: ServiceError, headers: dict[str, str] | None = None, status: int | None = None) -> Response:
    path = request.path
    if path == PATH_PREFIX or path.startswith(PATH_PREFIX + "/"):
        return json_response({"error": error.message}, status or error.status, headers)
    return json_response(error.to_dict(), status or error.status, headers)


def service_error(error: ServiceError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="prediction-service"'} if error.status == 401 else None
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    return reply(error, headers)


def http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if isinstance(error.__context__, TimeoutError):  # Werkzeug's ClientDisconnected of a read deadline
        return body_timeout(error.__context__)
    if status == 404:
        return reply(NotFound(f"no route {request.method} {shown(request.path, quote=False)}; see /openapi.json"))
    if status == 405:
        allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or []))
        path = shown(request.path, quote=False)
        error = MethodNotAllowed(f"{request.method} is not allowed on {path} (allowed: {allowed})")
        return reply(error, {"Allow": allowed})
    if status == 413:
        limit = request.max_content_length
        return reply(PayloadTooLarge(f"the body is larger than this route takes ({limit} bytes)"))
    if status == 415:
        return reply(UnsupportedMediaType(error.description or "unsupported content type"))
    if 400 <= status < 500:  # any other client error Werkzeug raises (400, 411, 414, 431 ...)
        return reply(ServiceError(error.description or error.name, code=code_for_status(status)), status=status)
    log.error("HTTP %s on %s %s: %s", status, request.method, request.path, error)
    return reply(ServiceError("internal error"), status=500)


def redis_down(error: redis.RedisError) -> Response:
    log.warning("Redis unavailable on %s %s: %r", request.method, request.path, error)
    return reply(ServiceUnavailable("Redis is unavailable; try again later"))


def mongo_down(error: Exception) -> Response:
    log.warning("MongoDB unavailable on %s %s: %r", request.method, request.path, error)
    return reply(ServiceUnavailable("MongoDB is unavailable; try again later"))


def body_timeout(error: TimeoutError) -> Response:
    """The HTTP server's read deadline struck while a view read the body (modelserver.py)."""
    message = "the request body did not arrive in time: send it at request_body_min_rate bytes per second at least"
    return reply(ServiceError(message, code="request_timeout"), {"Connection": "close"})


def unexpected(error: Exception) -> Response:
    """A bug: logged with its trace under an incident id; the client gets the id, no trace."""
    incident = uuid.uuid4().hex[:12]
    log.exception("unexpected error %s on %s %s", incident, request.method, request.path)
    return reply(ServiceError(f"internal error (incident {incident}); the server log has the details"))


def answer(error: Exception) -> Response:
    """The error envelope the API answers for error, chosen as register_errors chooses (the
    pages render the same status and message)."""
    if isinstance(error, ServiceError):
        return service_error(error)
    if isinstance(error, HTTPException):
        return http_error(error)
    if isinstance(error, redis.RedisError):
        return redis_down(error)
    if isinstance(error, pymongo.errors.ConnectionFailure):
        return mongo_down(error)
    return unexpected(error)


def register_errors(app: Flask) -> None:
    app.register_error_handler(ServiceError, service_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(redis.RedisError, redis_down)
    app.register_error_handler(pymongo.errors.ConnectionFailure, mongo_down)  # ServerSelectionTimeoutError too
    app.register_error_handler(TimeoutError, body_timeout)  # not Redis's or pymongo's: those are theirs
    app.register_error_handler(Exception, unexpected)
