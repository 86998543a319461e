"""ModelFactory: resolves an algorithm by name, from the configured allowlist only, and runs it.

An algorithm ``Name`` is the class ``Name`` of the top-level module ``Name.py`` (the classic
``LogisticRegressionWrapper``). A name outside the allowlist is refused before anything is
imported. An algorithm class offers::

    train(jobparameters, resources, handler) -> dict       # the model to store (worker)
    compile(model) -> predictor with .predict(records)     # online scoring, numpy (web)
    predict_all(model, jobparameters, resources, handler) -> dict  # batch scoring (worker)

The factory also keeps the web process's cache of compiled models, checked against the store's
version token on every use.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exceptions import NotFound, UnknownAlgorithm
from modelstore import ModelStore
from mongotarget import MongoClients

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")


@dataclass
class Resources:
    """What a job needs from its worker: settings, stores and (lazily) Spark."""

    params: dict[str, Any]
    models: ModelStore
    mongo: MongoClients
    spark: Callable[[], Any]


class ModelFactory:
    def __init__(self, allowed: Iterable[str], cache_size: int = 64):
        self.allowed = tuple(allowed)
        self._classes: dict[str, type] = {}
        self._cache: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def check(self, name: Any) -> str:
        """The name when the server offers it; UnknownAlgorithm otherwise (nothing imported)."""
        if not isinstance(name, str) or not _NAME.match(name) or name not in self.allowed:
            offered = ", ".join(self.allowed) or "none"
            raise UnknownAlgorithm(f"algorithm {name!r} is not offered by this server (offered: {offered})")
        return name

    def algorithm_class(self, name: Any) -> type:
        name = self.check(name)
        with self._lock:
            cls = self._classes.get(name)
            if cls is None:
                cls = getattr(importlib.import_module(name), name)
                self._classes[name] = cls
        return cls

    def set_model(self, params: Mapping[str, Any]) -> Any:
        """An instance of the job's algorithm (classic name)."""
        return self.algorithm_class(params.get("name"))()

    def train(self, jobparameters: Mapping[str, Any], resources: Resources, handler: Any) -> dict[str, Any]:
        return self.set_model(jobparameters).train(jobparameters, resources, handler)

    def predict_all(self, jobparameters: Mapping[str, Any], resources: Resources, handler: Any) -> dict[str, Any]:
        loaded = resources.models.load(jobparameters["modelkey"])
        if loaded is None:
            raise NotFound(f"model '{jobparameters['modelkey']}' not found")
        model, _ = loaded
        return self.set_model(model).predict_all(model, jobparameters, resources, handler)

    def get_model(self, store: ModelStore, key: str) -> Any:
        """The compiled model for key: cached, and re-read whenever the stored version moved."""
        version = store.version(key)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and version is not None and cached[0] == version:
                self._cache.move_to_end(key)
                return cached[1]
        loaded = store.load(key)
        if loaded is None:
            with self._lock:
                self._cache.pop(key, None)
            raise NotFound(f"model '{key}' not found")
        model, version = loaded
        predictor = self.set_model(model).compile(model)
        if version is not None:  # a model written around the store has no version: never cached
            with self._lock:
                self._cache[key] = (version, predictor)
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return predictor

    def predict(self, store: ModelStore, key: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return self.get_model(store, key).predict(records)
