"""The pages' entry: '/' and the token form, the pages' static files (/ui/static/) and the
template helpers every page uses (its CSRF token, the number format)."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Response, redirect, render_template, request, url_for

from web import guard
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint(
    "ui", __name__, template_folder="../templates", static_folder="../static", static_url_path="/ui/static"
)


@bp.app_template_global()
def csrf_token() -> str:
    return guard.csrf_token()


@bp.app_template_filter("num")
def num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


@bp.get("/")
def root() -> Response:
    return redirect(url_for("model_pages.models_page"))


@bp.route("/ui/login", methods=["GET", "POST"])
def login() -> Any:
    """The token, asked once; the browser keeps a session cookie derived from it."""
    token = services().params["auth_token"]
    target = request.values.get("next", "")
    if not (target.startswith("/ui/") and not target.startswith("/ui//")):
        target = url_for("model_pages.models_page")
    if not token:
        return redirect(target)
    if request.method == "POST":
        if hmac.compare_digest(request.form.get("token", "").encode(), token.encode()):
            guard.sign_in(token)
            return redirect(target, 303)
        return render_template("ui/login.html", next=target, error="that is not this service's token"), 401
    return render_template("ui/login.html", next=target, error=None)
