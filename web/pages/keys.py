"""The keys' page (an admin key's): the keys without their secrets, a form that makes one (its
secret shown on the answer only, never again) and a revoke button per key, through the same key
store the API's /keys/ routes use (``services().access.keys``)."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from predictionservice.apikeys import SCOPES
from predictionservice.exceptions import Conflict, InvalidRequest
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint("key_pages", __name__)


@bp.route("/ui/keys", methods=["GET", "POST"])
def keys_page() -> Any:
    access = services().access
    made, error, status = None, None, 200
    if request.method == "POST":
        if not access.secured:
            raise Conflict("this service has no auth_token, so it asks for no key: set auth_token first")
        try:
            record, secret = access.keys.create(request.form.get("name"), request.form.getlist("scope"))
            made = {**record, "key": secret}
            status = 201
        except InvalidRequest as exc:
            error, status = exc.message, 400
    page = render_template("ui/keys.html", keys=access.keys.list(), scopes=SCOPES, made=made, error=error)
    return page, status


@bp.post("/ui/keys/<id>/revoke")
def revoke_key(id: str) -> Response:  # the API's name for it
    services().access.keys.revoke(id)
    return redirect(url_for("key_pages.keys_page"), 303)
