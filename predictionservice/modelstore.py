"""Models in Redis database 1, keyed by the id of the job that trained them (the classic layout).

Each model is one JSON string. Beside them, the hash ``__versions__`` holds a random token per
model, replaced in the same transaction as the model: a web process that caches a compiled model
only has to read that token (one small HGET) to know its copy is still the stored one, so a
replaced or deleted model is never served stale.

With a ``redis_key_prefix`` every Redis key (models and ``__versions__``) carries it, so services
sharing one Redis each list only their own models; the API's model keys never show it.

Every save and delete also publishes the model's key on ``channel`` in the same transaction (and
tells this process's own listeners at once, before the call returns): web processes subscribed to
it (``predictionservice.modelwatch``) evict their cached copy without a per-request check. Pub/sub
channels are not per database, so the channel's name carries the database number and the prefix.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis

VERSIONS = "__versions__"
CHANNEL = "__model_changes__"
RESERVED = "__"  # the store's own entries (VERSIONS) start so: no model key does


def _reserved(key: str) -> bool:
    return key.startswith(RESERVED)


def num_features(model: dict[str, Any]) -> Any:
    """The one spelling the API shows; models stored before it spelled it numFeatures."""
    return model.get("num_features", model.get("numFeatures"))


def task_of(schema: Any) -> str | None:
    """What a model's schema makes it: a label with k >= 2 categories is classification
    (binary for two), one without values a regression."""
    label = schema.get("label") if isinstance(schema, dict) else None
    if not isinstance(label, dict):
        return None
    values = label.get("values")
    if not values:
        return "regression"
    return "binary classification" if len(values) == 2 else "multi-class classification"


def summary(key: str, model: dict[str, Any]) -> dict[str, Any]:
    """A model as GET /models/ lists it: what it is, how good, and where it came from."""
    parameters = model.get("parameters") if isinstance(model.get("parameters"), dict) else {}
    schema = model.get("schema")
    label = schema.get("label", {}) if isinstance(schema, dict) else {}
    return {
        "model_key": key,
        "name": model.get("name"),
        "created_at": model.get("created_at"),
        "metrics": model.get("metrics"),
        "num_features": num_features(model),
        "description": parameters.get("description"),
        "tags": parameters.get("tags", []),
        "lineage": {
            "algorithm": model.get("name"),
            "input_collection": parameters.get("inputCollection"),
            "label": label.get("key") if isinstance(label, dict) else None,
            "task": task_of(schema),
        },
    }


def detail(key: str, model: dict[str, Any]) -> dict[str, Any]:
    """A model as GET /models/<key> shows it: as stored, in the list's spelling (num_features,
    num_classes) whatever spelling it was stored with, and with the list's lineage."""
    shown = {k: v for k, v in model.items() if k not in ("numFeatures", "numClasses")}
    shown["num_features"] = num_features(model)
    shown["num_classes"] = model.get("num_classes", model.get("numClasses"))
    listed = summary(key, model)
    return {**shown, "description": listed["description"], "tags": listed["tags"], "lineage": listed["lineage"],
            "model_key": key}  # fmt: skip


class ModelStore:
    def __init__(self, client: redis.Redis, prefix: str = ""):
        self.client = client
        self.prefix = prefix
        self.versions = prefix + VERSIONS
        db = client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = f"{prefix}{CHANNEL}:{db}"
        self.listeners: list[Callable[[str], None]] = []  # called with the key after each change

    def save(self, key: str, model: dict[str, Any]) -> str:
        with self.client.pipeline(transaction=True) as pipe:
            version = self.queue_save(pipe, key, model)
            pipe.execute()
        self._changed(key)
        return version

    def queue_save(self, pipe: Any, key: str, model: dict[str, Any]) -> str:
        """The writes of a save, queued on a transaction's pipeline (the registry adds a version
        in the same MULTI/EXEC): the model, its new version token and the change message. The
        caller executes it, then calls ``_changed(key)``."""
        version = uuid.uuid4().hex
        pipe.set(self.prefix + key, json.dumps(model, separators=(",", ":")))
        pipe.hset(self.versions, key, version)
        pipe.publish(self.channel, key)
        return version

    def _changed(self, key: str) -> None:
        """This process hears of its own change before the call returns, not when the message
        comes back: the process that replaced or deleted a model never answers with it again."""
        for listener in self.listeners:
            listener(key)

    def version(self, key: str) -> str | None:
        if _reserved(key):
            return None
        value = self.client.hget(self.versions, key)
        return value.decode() if value is not None else None

    def load(self, key: str) -> tuple[dict[str, Any], str | None] | None:
        """(model, version) read together, or None when there is no such model."""
        if _reserved(key):
            return None
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.prefix + key)
            pipe.hget(self.versions, key)
            raw, version = pipe.execute()
        if raw is None:
            return None
        return json.loads(raw), version.decode() if version is not None else None

    def delete(self, key: str) -> bool:
        if _reserved(key):
            return False
        with self.client.pipeline(transaction=True) as pipe:
            self.queue_delete(pipe, key)
            deleted, _, _ = pipe.execute()
        self._changed(key)
        return bool(deleted)

    def queue_delete(self, pipe: Any, key: str) -> None:
        """The writes of a delete, queued on a transaction's pipeline (three replies: the
        deleted count first)."""
        pipe.delete(self.prefix + key)
        pipe.hdel(self.versions, key)
        pipe.publish(self.channel, key)

    def exists(self, key: str) -> bool:
        return not _reserved(key) and bool(self.client.exists(self.prefix + key))

    def count(self) -> int:
        """How many models the store holds: one version token each, so one HLEN, no scan."""
        return int(self.client.hlen(self.versions))

    def keys(self) -> Iterator[str]:
        for raw in self.client.scan_iter(match=_glob_escape(self.prefix) + "*", count=500):
            key = raw.decode()[len(self.prefix) :]
            if not _reserved(key):
                yield key

    def summaries(self) -> list[dict[str, Any]]:
        keys = sorted(self.keys())
        out: list[dict[str, Any]] = []
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            for key, raw in zip(chunk, self.client.mget([self.prefix + k for k in chunk]), strict=True):
                if raw is None:
                    continue  # deleted meanwhile
                try:
                    model = json.loads(raw)
                except ValueError:
                    model = None
                if not isinstance(model, dict):
                    continue  # not a model: db 1 holds only models, but never fail a listing for it
                out.append(summary(key, model))
        out.sort(key=lambda m: str(m.get("created_at") or ""), reverse=True)
        return out


def _glob_escape(text: str) -> str:
    """A prefix as a literal in a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
