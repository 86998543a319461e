"""redisclient.py: one Redis URL, several databases; checked against the test session's redis-server."""

import uuid

import pytest

from predictionservice.redisclient import connect, with_db


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1"),
        ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/1"),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/1"),
        ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/1"),
        ("redis://:pw@cache.internal:6380/2", "redis://:pw@cache.internal:6380/1"),
        (
            "rediss://user:pw@cache.internal/0?ssl_cert_reqs=none",
            "rediss://user:pw@cache.internal/1?ssl_cert_reqs=none",
        ),
        (
            "redis://127.0.0.1:6379/0?socket_keepalive=true&health_check_interval=5",
            "redis://127.0.0.1:6379/1?socket_keepalive=true&health_check_interval=5",
        ),
    ],
)
def test_with_db_replaces_the_database_number(url, expected):
    assert with_db(url, 1) == expected


def test_with_db_zero():
    assert with_db("redis://h:1/9", 0) == "redis://h:1/0"


@pytest.fixture()
def server_url(redis_url, redis_db):
    """The session server's URL without its database (redis_db has flushed db 9)."""
    return redis_url.rsplit("/", 1)[0]


@pytest.mark.parametrize("suffix", ["/0", "", "/3"])
def test_connect_talks_to_the_database_asked_for(server_url, redis_db, suffix):
    key, value = f"k-{uuid.uuid4().hex}", uuid.uuid4().hex
    client = connect(server_url + suffix, 9, timeout=2.0)
    try:
        assert client.client_info()["db"] == 9
        assert client.set(key, value) is True
        assert redis_db.get(key) == value.encode()  # a raw client on db 9 sees it
        redis_db.set(key + "-back", "from raw")
        assert client.get(key + "-back") == b"from raw"
        assert client.connection_pool.connection_kwargs["socket_timeout"] == 2.0
        assert client.connection_pool.connection_kwargs["socket_connect_timeout"] == 2.0
    finally:
        client.close()


def test_connect_without_db_uses_the_urls(server_url, redis_db):
    client = connect(server_url + "/9")
    try:
        assert client.client_info()["db"] == 9
        client.set("plain", "yes")
        assert redis_db.get("plain") == b"yes"
    finally:
        client.close()


def test_a_db_query_option_does_not_win_over_the_db_asked_for(server_url, redis_db):
    client = connect(server_url + "/0?db=3", 9)
    try:
        assert client.client_info()["db"] == 9  # read-only: which database the connection selected
    finally:
        client.close()


def test_with_db_keeps_a_unix_socket_path():
    url = with_db("unix:///run/redis/redis.sock?db=0", 1)
    client = connect("unix:///run/redis/redis.sock?db=0", 1)
    kwargs = client.connection_pool.connection_kwargs
    client.close()
    assert (kwargs["path"], kwargs["db"]) == ("/run/redis/redis.sock", 1)
    assert url == "unix:///run/redis/redis.sock?db=1"
