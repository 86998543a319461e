"""What every request passes before its view: its Host header, the bearer token, when one is
configured, and the body limit of its route.

The web pages (``/ui/``) are for browsers, which send no bearer header: with a token configured,
a page asks for it once (``/ui/login``) and the browser keeps a session cookie derived from it
(HttpOnly, SameSite=Strict, never the token itself). Every form a page posts carries a CSRF token
bound to a cookie of its own, and a post another site makes is refused before its view runs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import Response, g, request

from predictionservice.exceptions import Forbidden, InvalidHost, PayloadTooLarge, Unauthorized
from web.jsonio import shown
from web.services import services

OPEN_PATHS = frozenset({"/health", "/", "/ui", "/docs"})  # '/' and '/ui' only redirect to the pages
PAGES = "/ui/"
STATIC, LOGIN = "/ui/static/", "/ui/login"  # the pages' own files, and where the token is asked
SESSION_COOKIE, CSRF_COOKIE, CSRF_FIELD = "ps_session", "ps_csrf", "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
OPEN_PREFIXES = ("/docs/",)  # the documentation page's static files: nothing of the service's data


def guard() -> None:
    params = services().params
    check_host(params)
    token = params["auth_token"]
    if request.path.startswith(PAGES):
        _page_guard(token)
    elif token and request.path not in OPEN_PATHS and not request.path.startswith(OPEN_PREFIXES):
        if not _bearer_ok(token):
            raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <token>')")
    dataset_upload = request.method == "PUT" and request.path.startswith("/datasets/")
    request.max_content_length = params["max_dataset_bytes"] if dataset_upload else params["max_body_bytes"]
    if request.content_length is not None and request.content_length > request.max_content_length:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes; this route takes at most {request.max_content_length}"
        )


def _bearer_ok(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _page_guard(token: str) -> None:
    """A page: its CSRF cookie (issued on first sight), a post's CSRF check, then the token."""
    if request.path.startswith(STATIC):
        return
    if not _valid_csrf_cookie(request.cookies.get(CSRF_COOKIE, "")):
        g.new_csrf_cookie = secrets.token_hex(16)
    if request.method in UNSAFE:
        check_form()
    if token and request.path != LOGIN and not (signed_in(token) or _bearer_ok(token)):
        raise Unauthorized("this service needs its token: enter it once and this browser keeps it")


def session_value(token: str) -> str:
    """The session cookie's value: derived from the token (which stays out of the browser)."""
    return hmac.new(token.encode(), b"prediction-service pages session", hashlib.sha256).hexdigest()


def signed_in(token: str) -> bool:
    return hmac.compare_digest(request.cookies.get(SESSION_COOKIE, "").encode(), session_value(token).encode())


def _valid_csrf_cookie(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def csrf_token() -> str:
    """The token this browser's forms carry: an HMAC of its CSRF cookie under the app's key."""
    cookie = g.get("new_csrf_cookie") or request.cookies.get(CSRF_COOKIE, "")
    return hmac.new(services().page_key, cookie.encode(), hashlib.sha256).hexdigest()


def check_form() -> None:
    """A post from a page of this service: same origin (when the browser says where from) and
    the form's CSRF token matching this browser's cookie."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site not in (None, "same-origin", "none") or (origin and origin != request.host_url.rstrip("/")):
        raise Forbidden(f"a form posted from another site ({origin or site}) is refused")
    given = request.form.get(CSRF_FIELD, "")
    if "new_csrf_cookie" in g or not hmac.compare_digest(given.encode(), csrf_token().encode()):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and submit it again")


def sign_in(token: str) -> None:
    """The answer to this request keeps the session in the browser (set_page_cookies)."""
    g.new_session = session_value(token)


def set_page_cookies(response: Response) -> Response:
    """The cookies a page answer sets: a new CSRF cookie, and the session after sign-in."""
    secure = request.is_secure
    for name, value in ((CSRF_COOKIE, g.get("new_csrf_cookie")), (SESSION_COOKIE, g.get("new_session"))):
        if value is not None:
            response.set_cookie(name, value, httponly=True, samesite="Strict", secure=secure, path=PAGES)
    return response


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
