"""Redis clients of the service: one URL, several databases (0: broker, results and job records by
default; ``models_db``: the models)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis


def with_db(url: str, db: int) -> str:
    """The URL with its database number replaced (redis-py lets the URL's db, in the path or a
    ``?db=`` option, win over db=). A unix:// URL keeps its socket path and takes ``?db=``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "db"]
    if parts.scheme == "unix":
        return f"unix://{parts.netloc}{parts.path}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", urlencode(query), parts.fragment))


def connect(url: str, db: int | None = None, timeout: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(
        with_db(url, db) if db is not None else url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
