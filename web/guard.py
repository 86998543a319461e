"""What every request passes before its view: its Host header, the bearer token, when one is
configured, and the body limit of its route."""

from __future__ import annotations

import hmac
from typing import Any

from flask import request

from predictionservice.exceptions import InvalidHost, PayloadTooLarge, Unauthorized
from web.jsonio import shown
from web.services import services

OPEN_PATHS = frozenset({"/health"})


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def guard() -> None:
    params = services().params
    check_host(params)
    token = params["auth_token"]
    if token and request.path not in OPEN_PATHS:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <token>')")
    dataset_upload = request.method == "PUT" and request.path.startswith("/datasets/")
    request.max_content_length = params["max_dataset_bytes"] if dataset_upload else params["max_body_bytes"]
    if request.content_length is not None and request.content_length > request.max_content_length:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes; this route takes at most {request.max_content_length}"
        )


def check_host(params: dict[str, Any]) -> None:
    """A page of any site can make a browser send requests to a loopback service whose name the
    page's own DNS points at 127.0.0.1 (DNS rebinding): such requests carry the site's name in
    their Host header. Only the names of this server are answered."""
    allowed = params["allowed_hosts"]
    if "*" in allowed:
        return
    name = host_name(request.host)
    own = params["host"].lower()
    names = {*LOOPBACK_NAMES, f"[{own}]" if ":" in own else own, *(h.lower() for h in allowed)}
    if name not in names:
        raise InvalidHost(
            f"the Host header names {shown(name)}, not a name of this server; add it to allowed_hosts "
            "if the service is meant to answer to it"
        )


def host_name(host: str) -> str:
    """The name of a Host header value without its port ('[::1]:5000' -> '[::1]')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
