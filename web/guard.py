"""What every request passes before its view: the bearer token, when one is configured, and the
body limit of its route."""

from __future__ import annotations

import hmac

from flask import request

from predictionservice.exceptions import PayloadTooLarge, Unauthorized
from web.services import services

OPEN_PATHS = frozenset({"/health", "/docs"})
OPEN_PREFIXES = ("/docs/",)  # the documentation page's static files: nothing of the service's data


def guard() -> None:
    params = services().params
    token = params["auth_token"]
    if token and request.path not in OPEN_PATHS and not request.path.startswith(OPEN_PREFIXES):
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <token>')")
    dataset_upload = request.method == "PUT" and request.path.startswith("/datasets/")
    request.max_content_length = params["max_dataset_bytes"] if dataset_upload else params["max_body_bytes"]
    if request.content_length is not None and request.content_length > request.max_content_length:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes; this route takes at most {request.max_content_length}"
        )
