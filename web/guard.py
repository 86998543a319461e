"""What every request passes before its view: its Host header, its key and the scope its route
needs (web/scopes.py), when the service has a token, and the body limit of its route.

A key is 'Authorization: Bearer <key>' (the ``auth_token`` setting is one key with every scope).
A wrong one is 401 and counted against the client's address (predictionservice.authlimit); past
the limit that address is 429 with Retry-After. A right key without the route's scope is 403
naming the scope. Every change (a route of scope train or admin) is recorded in the audit trail
after its answer, with the key's name, never its secret.

The web pages (``/ui/``) are for browsers, which send no bearer header: a page asks for a key once
(``/ui/login``) and the browser keeps a random session id (HttpOnly, SameSite=Strict, Secure when
the request came over TLS, directly or through a trusted proxy), stored server-side in Redis with
an expiry, ended by /ui/logout or by revoking its key. Every form a page posts carries a CSRF token
bound to a cookie of its own, and a post another site makes is refused before its view runs.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis
from flask import Response, g, request

from predictionservice.apikeys import EVERYONE, Principal, now_iso
from predictionservice.exceptions import Forbidden, InvalidHost, PayloadTooLarge, Unauthorized
from web import requestid, scopes
from web.accesslog import client_address, from_trusted_proxy
from web.jsonio import shown
from web.services import services

PAGES = "/ui/"
STATIC, LOGIN = "/ui/static/", "/ui/login"  # the pages' own files, and where the key is asked
UPLOAD_PAGE = "/ui/datasets/upload"  # the datasets page's upload form: a dataset's body limit
SESSION_COOKIE, CSRF_COOKIE, CSRF_FIELD = "ps_session", "ps_csrf", "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
NOBODY = Principal("", "anonymous")
log = logging.getLogger("prediction_service")  # no key given on an open route of a service with a token


def guard() -> None:
    params = services().params
    check_host(params)
    scope = g.scope = scopes.required(request)  # kept for record_change, after the view
    method, path = request.method, request.path
    dataset_upload = (method == "PUT" and path.startswith("/datasets/")) or (method == "POST" and path == UPLOAD_PAGE)
    limit = params["max_dataset_bytes"] if dataset_upload else params["max_body_bytes"]
    # before a page's CSRF check reads its form: no form is read past the route's limit
    request.max_content_length = limit
    if path.startswith(PAGES):
        if path.startswith(STATIC):
            return
        _page_prelude()
    g.principal = authenticate(scope)
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; this route takes at most {limit}")


def authenticate(scope: str | None) -> Principal:
    """Who this request is, checked against the scope its route needs (OPEN: none)."""
    access = services().access
    if not access.secured:
        return EVERYONE
    bearer = _bearer()
    if scope is scopes.OPEN:
        principal = access.keys.authenticate(bearer) if bearer else None
        return principal or _session_principal() or NOBODY
    address = client()
    if access.limit.suspect(address):
        _limited(access.limit.check, address)
    principal = access.keys.authenticate(bearer) if bearer else _session_principal()
    if principal is None:
        if bearer or "Authorization" in request.headers:
            _limited(access.limit.failed, address)
        raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <key>')")
    if scope and not principal.allows(scope):
        route = scopes.route_of(request.url_rule.rule) if request.url_rule is not None else request.path
        raise Forbidden(
            f"the key {principal.name!r} lacks the scope '{scope}' that {request.method} {route} needs",
            details=[{"scope": scope}],
        )
    return principal


def _limited(step: Callable[[str], Any], address: str) -> None:
    """The failure limit's step; while Redis does not answer, the limit is not kept (the token
    still works; a key, which needs Redis, is then 503 anyway)."""
    try:
        step(address)
    except redis.RedisError as exc:
        log.warning("the failed-authentication limit is not kept while Redis is unavailable: %r", exc)


def allows(scope: str) -> bool:
    """Whether this request's key has the scope (what a page shows, what /health details)."""
    principal = g.get("principal")
    return principal is not None and principal.allows(scope)


def has_session() -> bool:
    """Whether this request came with a live page session (set by authenticate)."""
    return bool(g.get("from_session"))


def key_name() -> str:
    principal = g.get("principal")
    return principal.name if principal is not None else ""


def client() -> str:
    """The client's address: the peer's, or the one a trusted proxy names (X-Forwarded-For)."""
    return client_address(request.environ, services().access.proxies)


def _bearer() -> str:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def _session_principal() -> Principal | None:
    """The key of this browser's page session, as it is now (None: no session, or it ended)."""
    if not request.path.startswith(PAGES):
        return None
    access = services().access
    key_id = access.sessions.key_of(request.cookies.get(SESSION_COOKIE, ""))
    principal = access.keys.principal(key_id) if key_id is not None else None
    g.from_session = principal is not None
    return principal


def _page_prelude() -> None:
    """A page: its CSRF cookie (issued on first sight), then a post's CSRF check."""
    if not _valid_csrf_cookie(request.cookies.get(CSRF_COOKIE, "")):
        g.new_csrf_cookie = secrets.token_hex(16)
    if request.method in UNSAFE:
        check_form()


def record_change(response: Response) -> Response:
    """The audit trail's entry for a change made through the API (a route of scope train or
    admin, a method that writes): who, the request id, the route, the target, the status."""
    if g.get("scope", scopes.ANY) not in scopes.CHANGES:  # first: most requests change nothing
        return response
    principal = g.get("principal")
    if request.method not in UNSAFE or principal is None or request.url_rule is None:
        return response
    entry = _audit_entry(principal, response)
    try:
        services().access.audit.record(entry)
    except redis.RedisError as exc:  # the answer stands (a failed change's 503 among them); the entry is logged
        log.warning("audit trail unavailable (%r): %s", exc, json.dumps(entry))
    return response


def _audit_entry(principal: Principal, response: Response) -> dict[str, Any]:
    return {
        "time": now_iso(),
        "key": principal.name,
        "key_id": principal.id or None,
        "request_id": requestid.current(),
        "method": request.method,
        "route": scopes.route_of(request.url_rule.rule),
        "target": request.path,
        "status": response.status_code,
        "client": client(),
    }


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


def sign_in(principal: Principal) -> None:
    """A new page session for this key; the answer keeps its id in the browser (set_page_cookies)."""
    g.new_session = services().access.sessions.open(principal.id)


def sign_out() -> None:
    """The browser's page session ends here (its cookie is then worth nothing) and is cleared."""
    services().access.sessions.close(request.cookies.get(SESSION_COOKIE, ""))
    g.new_session = ""


def secure_request() -> bool:
    """Whether the request came over TLS: directly, or through a trusted proxy that says so
    (X-Forwarded-Proto, believed from trusted_proxies only)."""
    if request.is_secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" and from_trusted_proxy(request.environ, services().access.proxies)


def set_page_cookies(response: Response) -> Response:
    """The cookies a page answer sets: a new CSRF cookie, and the session after sign-in (or its
    removal after sign-out)."""
    secure = secure_request()
    for name, value in ((CSRF_COOKIE, g.get("new_csrf_cookie")), (SESSION_COOKIE, g.get("new_session"))):
        if value == "":
            response.delete_cookie(name, path=PAGES, secure=secure, httponly=True, samesite="Strict")
        elif value is not None:
            max_age = services().params["session_ttl"] if name == SESSION_COOKIE else None
            response.set_cookie(
                name, value, max_age=max_age, httponly=True, samesite="Strict", secure=secure, path=PAGES
            )
    return response


def check_host(params: dict[str, Any]) -> None:
    """A page of any site can make a browser send requests to a loopback service whose name the
    page's own DNS points at 127.0.0.1 (DNS rebinding): such requests carry the site's name in
    their Host header. Only the names of this server are answered."""
    names = host_names(params["host"], tuple(params["allowed_hosts"]))
    if names is None:
        return
    name = host_name(request.host)
    if name not in names:
        raise InvalidHost(
            f"the Host header names {shown(name)}, not a name of this server; add it to allowed_hosts "
            "if the service is meant to answer to it"
        )


@functools.lru_cache(maxsize=16)  # a server's settings, the same for every request
def host_names(own: str, allowed: tuple[str, ...]) -> frozenset[str] | None:
    """The names a Host header may give: loopback's, the server's own and allowed_hosts (None:
    any, for "*")."""
    if "*" in allowed:
        return None
    own = own.lower()
    return frozenset({*LOOPBACK_NAMES, f"[{own}]" if ":" in own else own, *(h.lower() for h in allowed)})


def host_name(host: str) -> str:
    """The name of a Host header value without its port ('[::1]:5000' -> '[::1]')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
