"""What every page blueprint shares (no blueprint itself): the security headers and cookies of
a page's answer, and an error shown as a page with the API's status and message."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, render_template, request

from predictionservice.exceptions import Unauthorized
from web import errors, guard
from web.services import services

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page_blueprint(name: str, import_name: str, **options: Any) -> Blueprint:
    """A blueprint of pages: its answers carry the pages' headers and cookies, its errors are
    pages (each resource's pages are one blueprint, and every one behaves alike)."""
    bp = Blueprint(name, import_name, **options)
    bp.after_request(page_headers)
    bp.register_error_handler(Exception, page_error)
    return bp


def page_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return guard.set_page_cookies(response)


def page_error(error: Exception) -> Any:
    """The API's answer to the error (status, code, message), as a page; in token mode, an
    unauthorized visit gets the token form."""
    if isinstance(error, Unauthorized) and services().access.secured:
        return render_template("ui/login.html", next=request.full_path.rstrip("?"), error=None), 401
    reply = errors.answer(error)
    envelope = json.loads(reply.get_data())["error"]
    return render_template("ui/error.html", status=reply.status_code, error=envelope), reply.status_code
