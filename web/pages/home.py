"""The pages' entry: '/' and the token form, the pages' static files (/ui/static/) and the
template helpers every page uses (its CSRF token, the number format)."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from web import guard, readable
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint(
    "ui", __name__, template_folder="../templates", static_folder="../static", static_url_path="/ui/static"
)


@bp.app_template_global()
def csrf_token() -> str:
    return guard.csrf_token()


@bp.app_template_global()
def can(scope: str) -> bool:
    """Whether this page's key has the scope: a form it cannot use is not shown."""
    return guard.allows(scope)


@bp.app_template_global()
def signed_in() -> bool:
    """Whether this browser has a page session (then the pages offer to sign out)."""
    return guard.has_session()


@bp.app_template_global()
def key_name() -> str:
    return guard.key_name()


# The pages' formats for people (web/readable.py), as template filters: ``{{ value|num }}``.
for _name, _format in (
    ("num", readable.number),
    ("percent", readable.percent),
    ("ago", readable.ago),
    ("exact", readable.exact),
    ("duration", readable.duration),
):
    bp.add_app_template_filter(_format, _name)


@bp.get("/")
def root() -> Response:
    return redirect(url_for("model_pages.models_page"))


@bp.route("/ui/login", methods=["GET", "POST"])
def login() -> Any:
    """A key (or the service's token), asked once; the browser keeps a random session id, the
    session itself is in Redis (web/guard.py). Wrong keys count against the address as the API's do."""
    access = services().access
    target = request.values.get("next", "")
    if not (target.startswith("/ui/") and not target.startswith("/ui//")):
        target = url_for("model_pages.models_page")
    if not access.secured:
        return redirect(target)
    if request.method == "POST":
        address = guard.client()
        access.limit.check(address)
        principal = access.keys.authenticate(request.form.get("token", "").strip())
        if principal is not None:
            guard.sign_in(principal)
            return redirect(target, 303)
        access.limit.failed(address)
        wrong = "that is not this service's token nor one of its keys"
        return render_template("ui/login.html", next=target, error=wrong), 401
    return render_template("ui/login.html", next=target, error=None)


@bp.post("/ui/logout")
def logout() -> Response:
    """This browser's session ends (server-side too: its cookie is worth nothing afterwards)."""
    guard.sign_out()
    return redirect(url_for("ui.login"), 303)
