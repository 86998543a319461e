"""Redis clients of the service: one URL, several databases (0: broker, results and job records by
default; ``models_db``: the models)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from predictionservice.defaults import FINAL_UPDATE_ATTEMPTS, FINAL_UPDATE_FIRST_WAIT

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def through_outage(call: Callable[[], T], what: str) -> T:
    """call() again while Redis does not answer, waits doubling from FINAL_UPDATE_FIRST_WAIT, at
    most FINAL_UPDATE_ATTEMPTS times: a job's result (its model, its final state) is worth waiting
    out a Redis restart for, where a progress step is not."""
    for attempt in range(FINAL_UPDATE_ATTEMPTS - 1):
        try:
            return call()
        except redis.ConnectionError as exc:
            wait = FINAL_UPDATE_FIRST_WAIT * 2**attempt
            log.warning("%s: Redis did not answer (%s); again in %.1f s", what, exc, wait)
            time.sleep(wait)
    return call()
