"""The audit trail over HTTP (``GET /audit/``, an ``admin`` key's): the latest changes made through
the API, newest first, as web/guard.py recorded them (predictionservice.audit)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from predictionservice.defaults import MAX_AUDIT_LIST
from predictionservice.exceptions import InvalidRequest
from web.jsonio import json_response
from web.services import services

bp = Blueprint("audit", __name__)


@bp.get("/audit/", strict_slashes=False)
def list_audit() -> Response:
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUDIT_LIST:
        raise InvalidRequest(f"'limit' must be a whole number from 1 to {MAX_AUDIT_LIST}")
    return json_response({"entries": services().access.audit.entries(int(raw))})
