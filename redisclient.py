"""Redis clients of the service: one URL, several databases (0: broker, results and job records by
default; ``models_db``: the models)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis


def with_db(url: str, db: int) -> str:
    """The URL with its database number replaced (redis-py lets the URL's db win over db=)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def connect(url: str, db: int | None = None, timeout: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(
        with_db(url, db) if db is not None else url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
