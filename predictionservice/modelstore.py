"""Models in Redis database 1, keyed by the id of the job that trained them (the classic layout).

Each model is one JSON string. Beside them, the hash ``__versions__`` holds a random token per
model, replaced in the same transaction as the model: a web process that caches a compiled model
only has to read that token (one small HGET) to know its copy is still the stored one, so a
replaced or deleted model is never served stale.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import redis

VERSIONS = "__versions__"
RESERVED = "__"  # the store's own entries (VERSIONS) start so: no model key does


def _reserved(key: str) -> bool:
    return key.startswith(RESERVED)


class ModelStore:
    def __init__(self, client: redis.Redis):
        self.client = client

    def save(self, key: str, model: dict[str, Any]) -> str:
        version = uuid.uuid4().hex
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(model, separators=(",", ":")))
            pipe.hset(VERSIONS, key, version)
            pipe.execute()
        return version

    def version(self, key: str) -> str | None:
        if _reserved(key):
            return None
        value = self.client.hget(VERSIONS, key)
        return value.decode() if value is not None else None

    def load(self, key: str) -> tuple[dict[str, Any], str | None] | None:
        """(model, version) read together, or None when there is no such model."""
        if _reserved(key):
            return None
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.hget(VERSIONS, key)
            raw, version = pipe.execute()
        if raw is None:
            return None
        return json.loads(raw), version.decode() if version is not None else None

    def delete(self, key: str) -> bool:
        if _reserved(key):
            return False
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hdel(VERSIONS, key)
            deleted, _ = pipe.execute()
        return bool(deleted)

    def count(self) -> int:
        """How many models the store holds: one version token each, so one HLEN, no scan."""
        return int(self.client.hlen(VERSIONS))

    def keys(self) -> Iterator[str]:
        for raw in self.client.scan_iter(count=500):
            key = raw.decode()
            if not _reserved(key):
                yield key

    def summaries(self) -> list[dict[str, Any]]:
        keys = sorted(self.keys())
        out: list[dict[str, Any]] = []
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            for key, raw in zip(chunk, self.client.mget(chunk), strict=True):
                if raw is None:
                    continue  # deleted meanwhile
                try:
                    model = json.loads(raw)
                except ValueError:
                    model = None
                if not isinstance(model, dict):
                    continue  # not a model: db 1 holds only models, but never fail a listing for it
                out.append(
                    {
                        "model_key": key,
                        "name": model.get("name"),
                        "created_at": model.get("created_at"),
                        "metrics": model.get("metrics"),
                        "num_features": model.get("numFeatures"),
                    }
                )
        out.sort(key=lambda m: str(m.get("created_at") or ""), reverse=True)
        return out
