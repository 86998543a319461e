"""Temporary collections: where loads and Spark writes put their documents before an atomic
rename (or merge) publishes them. Their names carry their creation time, so what a killed process
left behind can be recognised and dropped. No dependency beyond pymongo: Spark ships this file to
its executors beside sparkmongo.py."""

from __future__ import annotations

import time
import uuid
from typing import Any

STALE_AFTER = 24 * 3600  # seconds: no load or write lives this long; its process died


def temp_name(prefix: str, collection: str) -> str:
    """prefix, creation time (hex seconds), a random part, the target's name (within 120 bytes)."""
    return f"{prefix}{int(time.time()):x}_{uuid.uuid4().hex[:8]}_{collection}"[:120]


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
