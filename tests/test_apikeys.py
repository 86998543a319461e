"""predictionservice/apikeys.py: keys made, listed, revoked and checked on a real Redis; stored
as HMAC-SHA256 digests only; a revoked key refused at once by the store that revoked it and, through
the change channel, by another process's store whose cache held it."""

from __future__ import annotations

import time

import pytest

from predictionservice.apikeys import SCOPES, TOKEN_KEY, KeyStore, configured_keys
from predictionservice.exceptions import InvalidRequest, NotFound
from predictionservice.modelwatch import ModelWatch


def watched(store: KeyStore) -> ModelWatch:
    watch = ModelWatch(store.client, store.channel, on_change=store.forget, on_reset=store.clear, ping_interval=0.05)
    store.trusted = watch.healthy
    return watch


def test_a_key_is_shown_once_and_stored_only_as_a_digest(redis_db):
    store = KeyStore(redis_db, "p:", secret="server-secret")
    record, secret = store.create("scorer", ["predict"])
    assert secret.startswith("psk_") and len(secret) > 40
    assert record["name"] == "scorer" and record["scopes"] == ["predict"]
    dump = b"".join(redis_db.dump(k) or b"" for k in redis_db.keys("*"))
    assert secret.encode() not in dump
    assert store.digest(secret).encode() in redis_db.hgetall("p:__api_key_digests__")
    listed = store.list()
    assert [k["id"] for k in listed] == [record["id"]]
    assert set(listed[0]) == {"id", "name", "scopes", "created_at", "last_used_at"}


def test_authenticate_and_scopes(redis_db):
    store = KeyStore(redis_db, token="the-token")
    _, reader = store.create("reader", ["read", "read"])
    principal = store.authenticate(reader)
    assert principal.name == "reader" and principal.allows("read") and not principal.allows("admin")
    assert store.authenticate(reader + "x") is None
    assert store.authenticate("") is None and store.authenticate("psk_") is None
    token = store.authenticate("the-token")
    assert token.id == TOKEN_KEY and token.scopes == frozenset(SCOPES)
    assert store.list()[0]["last_used_at"] is not None


def test_the_secret_is_shared_through_redis_when_not_configured(redis_db):
    first, second = KeyStore(redis_db), KeyStore(redis_db)
    _, secret = first.create("a", ["read"])
    assert second.authenticate(secret).name == "a"
    assert KeyStore(redis_db, secret="another").authenticate(secret) is None  # digests are keyed


@pytest.mark.parametrize(
    ("name", "scopes"),
    [("", ["read"]), ("  ", ["read"]), (None, ["read"]), ("x" * 101, ["read"]), ("a", []), ("a", "read"),
     ("a", ["root"]), ("a", ["read", 1]), ("a", None)],
)  # fmt: skip
def test_bad_keys_are_refused(redis_db, name, scopes):
    with pytest.raises(InvalidRequest):
        KeyStore(redis_db).create(name, scopes)
    assert KeyStore(redis_db).list() == []


def test_revoke_unknown_is_not_found(redis_db):
    with pytest.raises(NotFound):
        KeyStore(redis_db).revoke("nope")


def test_revocation_reaches_another_process_cache_through_the_channel(redis_db):
    here, there = KeyStore(redis_db), KeyStore(redis_db)
    watch = watched(there)
    try:
        record, secret = here.create("app", ["predict"])
        deadline = time.monotonic() + 10
        while not watch.healthy():
            assert time.monotonic() < deadline, "the subscription never came up"
            time.sleep(0.01)
        assert there.authenticate(secret) is not None
        assert there._cache, "a trusted store caches the key it checked"
        here.revoke(record["id"])
        assert here.authenticate(secret) is None  # at once where revoked
        deadline = time.monotonic() + 5
        while there._cache:
            assert time.monotonic() < deadline, "the other store never heard of the revocation"
            time.sleep(0.005)
        assert there.authenticate(secret) is None
    finally:
        watch.stop()


def test_an_untrusted_cache_checks_redis_every_time(redis_db):
    here, there = KeyStore(redis_db), KeyStore(redis_db)  # no subscription: never trusted
    record, secret = here.create("app", ["read"])
    assert there.authenticate(secret) is not None
    here.revoke(record["id"])
    assert there.authenticate(secret) is None


def test_keys_given_by_configuration(redis_db):
    secret = "c" * 32
    given = configured_keys([f"reporting:read+predict:{secret}"])
    store = KeyStore(redis_db, configured=given)
    principal = store.authenticate(secret)
    assert principal.name == "reporting" and principal.scopes == {"read", "predict"}
    assert store.principal(principal.id) == principal  # a page session of it
    assert store.authenticate(secret[:-1]) is None
    assert [(k["id"], k["source"]) for k in store.list()] == [("config:reporting", "setting api_keys")]


@pytest.mark.parametrize("entry", ["reporting:read:short", "x:root:" + "c" * 32, ":read:" + "c" * 32, "nothing"])
def test_a_wrong_configured_key_is_refused_without_its_secret(entry):
    with pytest.raises(ValueError, match="api_keys entry 1") as refused:
        configured_keys([entry])
    assert "c" * 32 not in str(refused.value)
