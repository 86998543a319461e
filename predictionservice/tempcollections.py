"""Temporary collections: where loads and Spark writes put their documents before an atomic
rename (or merge) publishes them. Their names carry their creation time, so what a killed process
left behind can be recognised and dropped. No dependency beyond pymongo: Spark ships this file to
its executors beside sparkmongo.py."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

STALE_AFTER = 24 * 3600  # seconds: no load or write lives this long; its process died
LOADING_PREFIX = "__loading_"  # dataset uploads (datasetloader)
WRITING_PREFIX = "__writing_"  # Spark writes (sparkmongo)
# No collection the API names may start so: a stale sweep would drop it (mongotarget refuses them).
RESERVED_PREFIXES = (LOADING_PREFIX, WRITING_PREFIX)


def temp_name(prefix: str, collection: str) -> str:
    """prefix, creation time (hex seconds), a random part, the target's name (within 120 bytes)."""
    return f"{prefix}{int(time.time()):x}_{uuid.uuid4().hex[:8]}_{collection}"[:120]


class IdClash(ValueError):
    """An append would meet a document already in the target: nothing was merged."""


_TARGET_LOCKS: dict[str, threading.Lock] = {}
_TARGET_LOCKS_GUARD = threading.Lock()


def _target_lock(db: Any, target: str) -> threading.Lock:
    """One lock per target namespace in this process."""
    with _TARGET_LOCKS_GUARD:
        return _TARGET_LOCKS.setdefault(f"{db.name}.{target}", threading.Lock())


def publish(db: Any, temp: str, target: str, *, replace: bool) -> None:
    """Make a fully written temporary collection the target, all or nothing: renamed over it
    (replace) or merged into it (append). An append refuses an _id clash up front, so the merge
    cannot stop halfway; publishes of one target take turns (the web server's concurrent uploads
    are threads of one process), so no other append can slip in between the check and the merge.
    The temporary collection is gone afterwards, whatever happened."""
    with _target_lock(db, target):
        _publish(db, temp, target, replace=replace)


def _publish(db: Any, temp: str, target: str, *, replace: bool) -> None:
    try:
        if replace:
            db[temp].rename(target, dropTarget=True)
            return
        clash = list(
            db[temp].aggregate(
                [
                    {"$lookup": {"from": target, "localField": "_id", "foreignField": "_id", "as": "hit"}},
                    {"$match": {"hit.0": {"$exists": True}}},
                    {"$limit": 1},
                    {"$project": {"_id": 1}},
                ]
            )
        )
        if clash:
            raise IdClash(f"document _id {clash[0]['_id']!r} already exists in {db.name}.{target}")
        list(db[temp].aggregate([{"$merge": {"into": target, "whenMatched": "fail", "whenNotMatched": "insert"}}]))
    finally:
        db.drop_collection(temp)


def drop_stale(db: Any, prefix: str, max_age: float = STALE_AFTER) -> list[str]:
    """Drop this prefix's temporary collections older than max_age; returns their names."""
    dropped = []
    for name in db.list_collection_names():
        if not name.startswith(prefix):
            continue
        try:
            born = int(name[len(prefix) :].split("_", 1)[0], 16)
        except ValueError:
            continue
        if time.time() - born > max_age:
            db.drop_collection(name)
            dropped.append(name)
    return dropped
