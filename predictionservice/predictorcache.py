"""The web process's compiled predictors by model key (moved out of modelfactory.py, where the
algorithms are: only the web process keeps predictors). A predictor is compiled by the factory
it is given (ModelFactory.compile), from the model store's document, and dropped when the stored
model changes, so a replaced or deleted model is never served."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from predictionservice.exceptions import NotFound
from predictionservice.modelstore import ModelStore


class PredictorCache:
    """Compiled predictors by model key, re-read whenever the stored model changed.

    With a healthy ``watch`` (the model store's change channel, predictionservice.modelwatch) a
    cached predictor is answered as is: every change evicts it as its message arrives, and this
    process's own changes evict it before the change returns. Without one, or while the watch
    cannot be trusted, each lookup reads the model's version token (one HGET) as before.

    ``hits`` counts the lookups answered from the cache, ``misses`` the others (a model read and
    compiled, or not found): /metrics shows both, so an operator sees whether the cache is big
    enough for the models in use."""

    def __init__(self, factory: Any, store: ModelStore, size: int = 64, watch: Any = None):
        self.factory = factory
        self.store = store
        self.watch = watch
        self._size = size
        self._cache: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._evictions = 0  # bumped by every eviction: a load that raced one is not cached
        self.hits = 0
        self.misses = 0
        store.listeners.append(self.forget)

    def forget(self, key: str) -> None:
        """Drop key's predictor: the stored model changed or is gone."""
        with self._lock:
            self._evictions += 1
            self._cache.pop(key, None)

    def clear(self) -> None:
        """Drop every predictor: changes may have been missed."""
        with self._lock:
            self._evictions += 1
            self._cache.clear()

    def get(self, key: str) -> Any:
        """The predictor for key; NotFound when no such model is stored."""
        trusted = self.watch is not None and self.watch.healthy()
        version = None if trusted else self.store.version(key)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and (trusted or (version is not None and cached[0] == version)):
                self._cache.move_to_end(key)
                self.hits += 1
                return cached[1]
            self.misses += 1
            evictions = self._evictions
        loaded = self.store.load(key)
        if loaded is None:
            self.forget(key)
            raise NotFound(f"model '{key}' not found")
        stored, version = loaded
        predictor = self.factory.compile(stored)
        if version is not None:  # a model written around the store has no version: never cached
            self._keep(key, version, predictor, evictions)
        return predictor

    def _keep(self, key: str, version: str, predictor: Any, evictions: int) -> None:
        with self._lock:
            if self._evictions != evictions:
                return  # evicted while it was read: it may be the model just replaced or deleted
            self._cache[key] = (version, predictor)
            self._cache.move_to_end(key)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
