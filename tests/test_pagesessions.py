"""predictionservice/pagesessions.py and the pages' sign-in (web/guard.py, web/pages/home.py): a
session per browser, a random id in the cookie and the session server-side in Redis with an
expiry; sign-out ends it server-side; revoking its key ends it; the cookie is Secure when the
request came over TLS through a trusted proxy (X-Forwarded-Proto believed from it only); the pages
show only the forms the key's scopes allow."""

from __future__ import annotations

import re
import uuid

import pytest

from helpers import TINY_MODEL as MODEL
from helpers import InProcess
from modelservice import modelservice
from predictionservice.modelstore import ModelStore
from predictionservice.pagesessions import SessionStore
from predictionservice.redisclient import connect

TOKEN = "pages-token"


def test_sessions_in_redis(redis_db):
    store = SessionStore(redis_db, "p:", ttl=30)
    first, second = store.open("k1"), store.open("k1")
    assert first != second and len(first) >= 40
    assert store.key_of(first) == store.key_of(second) == "k1"
    assert first.encode() not in b"".join(redis_db.keys("*"))  # only its hash is a Redis key
    (name,) = [k for k in redis_db.keys("p:__page_session__:*")][:1]
    assert 0 < redis_db.ttl(name) <= 30
    store.close(first)
    assert store.key_of(first) is None and store.key_of(second) == "k1"
    other = store.open("k2")
    assert store.close_all("k1") == 2 and store.key_of(second) is None and store.key_of(other) == "k2"
    assert store.key_of("") is None and store.key_of("x" * 1000) is None


@pytest.fixture()
def app(base_params):
    prefix = f"s{uuid.uuid4().hex[:8]}:"
    params = {**base_params, "auth_token": TOKEN, "redis_key_prefix": prefix, "trusted_proxies": ["10.9.9.9"]}
    started = InProcess(modelservice(params))
    ModelStore(connect(base_params["redis_url"], base_params["models_db"]), prefix).save("m", MODEL)
    return started


def browser(app, address: str = "127.0.0.1"):
    """A browser of its own (its own cookies), at an address of its own."""
    client = app.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def sign_in(client, secret: str, **kw):
    page = client.get("/ui/login", **kw)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/ui/login", data={"token": secret, "next": "/ui/jobs", "csrf_token": token}, **kw)


def session_cookie(response) -> str:
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("ps_session=")]
    return cookie


def new_key(app, name: str, scopes: list[str]) -> dict:
    made = app.post("/keys/", json={"name": name, "scopes": scopes}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert made.status_code == 201, made.text
    return made.json()


def test_a_session_per_browser_and_sign_out(app):
    key = new_key(app, "viewer", ["read"])
    one, two = browser(app), browser(app)
    signed = sign_in(one, key["key"])
    assert signed.status_code == 303
    cookie = session_cookie(signed)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie and "Secure" not in cookie
    assert key["key"] not in cookie and TOKEN not in cookie
    assert session_cookie(sign_in(two, key["key"])) != cookie  # a session per browser, not per key
    assert one.get("/ui/jobs").status_code == 200 and two.get("/ui/jobs").status_code == 200
    page = one.get("/ui/jobs").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    assert 'id="logout-form"' in page and "viewer" in page
    stolen = cookie.split(";")[0].split("=", 1)[1]
    out = one.post("/ui/logout", data={"csrf_token": token})
    assert out.status_code == 303 and "ps_session=;" in session_cookie(out)
    assert one.get("/ui/jobs").status_code == 401
    replay = browser(app)
    replay.set_cookie("ps_session", stolen, path="/ui/")
    assert replay.get("/ui/jobs").status_code == 401  # ended server-side, not only in the browser
    assert two.get("/ui/jobs").status_code == 200  # the other browser's session goes on


def test_revoking_the_key_ends_its_sessions(app):
    key = new_key(app, "temp", ["read"])
    page = browser(app)
    sign_in(page, key["key"])
    assert page.get("/ui/jobs").status_code == 200
    assert app.request("DELETE", f"/keys/{key['id']}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 204
    assert page.get("/ui/jobs").status_code == 401


def test_secure_only_through_a_trusted_tls_proxy(app):
    key = new_key(app, "v", ["read"])
    tls = {"headers": {"X-Forwarded-Proto": "https"}}
    assert "Secure" in session_cookie(sign_in(browser(app, "10.9.9.9"), key["key"], **tls))
    assert "Secure" not in session_cookie(sign_in(browser(app, "10.9.9.8"), key["key"], **tls))
    assert "Secure" not in session_cookie(sign_in(browser(app, "10.9.9.9"), key["key"]))


@pytest.mark.parametrize(
    ("scopes", "shown", "hidden"),
    [
        (["read"], [], ['id="predict-form"', "Delete this model", ">Train</a>"]),
        (["read", "predict"], ['id="predict-form"'], ["Delete this model", ">Train</a>"]),
        (["read", "train"], [">Train</a>"], ['id="predict-form"', "Delete this model"]),
        (["read", "admin"], ["Delete this model"], ['id="predict-form"', ">Train</a>"]),
    ],
)
def test_pages_show_only_what_the_key_may_do(app, scopes, shown, hidden):
    page = browser(app)
    sign_in(page, new_key(app, "k", scopes)["key"])
    text = page.get("/ui/models/m").get_data(as_text=True)
    for part in shown:
        assert part in text
    for part in hidden:
        assert part not in text
    if "predict" not in scopes:
        form = re.search(r'name="csrf_token" value="([0-9a-f]+)"', text).group(1)
        assert page.post("/ui/models/m", data={"x": "1", "csrf_token": form}).status_code == 403


def test_the_token_signs_in_with_every_form(app):
    page = browser(app)
    sign_in(page, TOKEN)
    text = page.get("/ui/models/m").get_data(as_text=True)
    assert 'id="predict-form"' in text and "Delete this model" in text and ">Train</a>" in text
