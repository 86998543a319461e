"""API keys over HTTP (an ``admin`` key's routes, web/scopes.py): make one (its secret answered
this once), list them (never a secret) and revoke one, through the library's key store
(``predictionservice.apikeys``)."""

from __future__ import annotations

from flask import Blueprint, Response

from predictionservice.exceptions import Conflict, InvalidRequest
from web.jsonio import json_body, json_response
from web.services import services

bp = Blueprint("keys", __name__)


@bp.post("/keys/", strict_slashes=False)
def create_key() -> Response:
    access = services().access
    if not access.secured:
        raise Conflict("this service has no auth_token, so it asks for no key: set auth_token first")
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be a JSON object {"name": ..., "scopes": [...]}')
    record, secret = access.keys.create(body.get("name"), body.get("scopes"))
    shown = {k: record[k] for k in ("id", "name", "scopes", "created_at")}
    return json_response({**shown, "key": secret}, 201, {"Location": f"/keys/{record['id']}"})


@bp.get("/keys/", strict_slashes=False)
def list_keys() -> Response:
    return json_response({"keys": services().access.keys.list()})


@bp.delete("/keys/<id>")
def revoke_key(id: str) -> Response:  # the contract names it {id}
    services().access.keys.revoke(id)
    return Response(status=204)
