"""ModelFactory: resolves an algorithm by name, from the configured allowlist only, and runs it.

An algorithm ``Name`` is the class ``Name`` of the top-level module ``Name.py`` (the classic
``LogisticRegressionWrapper``). A name outside the allowlist is refused before anything is
imported. Three words, each for one thing:

* an **algorithm** is an instance of such a class; it offers::

      train(job, resources, handler) -> dict                   # the stored model (worker)
      compile(stored_model) -> predictor                       # online scoring, numpy (web)
      predict_all(stored_model, job, resources, handler) -> dict  # batch scoring (worker)

* a **stored model** is the JSON document an algorithm's ``train`` saved in the model store;
* a **predictor** is a stored model compiled for online scoring (``predict_one``, ``predict``).

``PredictorCache`` is the web process's cache of predictors, checked against the store's version
token on every use, so a replaced or deleted model is never served.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from predictionservice.exceptions import NotFound, UnknownAlgorithm
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")


@dataclass
class Resources:
    """What a job needs from its worker: settings, stores and (lazily) Spark."""

    params: dict[str, Any]
    models: ModelStore
    mongo: MongoClients
    spark: Callable[[], Any]


class ModelFactory:
    def __init__(self, allowed: Iterable[str]):
        self.allowed = tuple(allowed)
        self._classes: dict[str, type] = {}
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

    def check_schema(self, name: Any, parser: Any) -> None:
        """The algorithm's own check of a job's schema (the label kinds it takes), if it has one."""
        check = getattr(self.algorithm_class(name), "check_schema", None)
        if check is not None:
            check(parser)

    def algorithm(self, name: Any) -> Any:
        """An instance of the algorithm called name (a job document's or a stored model's)."""
        return self.algorithm_class(name)()

    def train(self, job: Mapping[str, Any], resources: Resources, handler: Any) -> dict[str, Any]:
        return self.algorithm(job.get("name")).train(job, resources, handler)

    def predict_all(self, job: Mapping[str, Any], resources: Resources, handler: Any) -> dict[str, Any]:
        loaded = resources.models.load(job["modelkey"])
        if loaded is None:
            raise NotFound(f"model '{job['modelkey']}' not found")
        stored, _ = loaded
        return self.algorithm(stored.get("name")).predict_all(stored, job, resources, handler)

    def compile(self, stored: Mapping[str, Any]) -> Any:
        """The predictor of a stored model."""
        return self.algorithm(stored.get("name")).compile(stored)


class PredictorCache:
    """Compiled predictors by model key, re-read whenever the stored version token moved."""

    def __init__(self, factory: ModelFactory, store: ModelStore, size: int = 64):
        self.factory = factory
        self.store = store
        self._size = size
        self._cache: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The predictor for key; NotFound when no such model is stored."""
        version = self.store.version(key)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and version is not None and cached[0] == version:
                self._cache.move_to_end(key)
                return cached[1]
        loaded = self.store.load(key)
        if loaded is None:
            with self._lock:
                self._cache.pop(key, None)
            raise NotFound(f"model '{key}' not found")
        stored, version = loaded
        predictor = self.factory.compile(stored)
        if version is not None:  # a model written around the store has no version: never cached
            with self._lock:
                self._cache[key] = (version, predictor)
                self._cache.move_to_end(key)
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return predictor
