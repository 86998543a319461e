"""References to named models resolved to model keys in a web process, cached (docs/API.md,
"Named models": ``<name>``, ``<name>@<alias>``, ``<name>/<version>`` wherever a model key goes).

A model key's form (32 hexadecimal digits) is answered at once, as it is: a plain key costs one
regular expression and nothing else. A name's resolution table (its aliases, and version -> model
key) is read from the registry once and kept; like the predictor cache, it is trusted as long as
the model store's change subscription (modelwatch) is healthy, since every registry change
publishes ``__registry__:<name>`` on that channel (and this process's own changes evict before
they return). While the subscription is down, each lookup reads the name's token (one HGET) and
re-reads a table whose token changed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from predictionservice.defaults import REFERENCE_CACHE
from predictionservice.registry import (
    ENTRY,
    MAX_REFERENCE,
    PRODUCTION,
    Registry,
    parse_reference,
    unknown_alias,
    unknown_version,
)
from predictionservice.traffic import Traffic


@dataclass(frozen=True)
class Resolved:
    """What a reference named: the model key, and the name and version it is of."""

    key: str
    name: str
    version: int
    # a bare name's shadow or split (traffic.Traffic), resolved with it; None for any other reference
    traffic: Traffic | None = field(default=None, compare=False)

    def shown(self) -> dict[str, Any]:
        """An answer's ``model``: what served it."""
        return {"name": self.name, "version": self.version, "model_key": self.key}


_parsed = lru_cache(maxsize=REFERENCE_CACHE)(parse_reference)


_MISS = object()


class References:
    """Resolves references for one registry, caching each name's table and, while the change
    subscription is trusted, each reference's answer (one dict lookup a request)."""

    def __init__(self, registry: Registry, watch: Any = None, size: int = REFERENCE_CACHE):
        self.registry = registry
        self.watch = watch
        self._size = size
        self._tables: OrderedDict[str, tuple[str | None, dict[str, Any] | None]] = OrderedDict()
        self._answers: dict[str, Resolved | None] = {}  # reference -> what it resolved to
        self._refs_of: dict[str, set[str]] = {}  # name -> its references in _answers
        self._lock = threading.Lock()
        self._evictions = 0
        registry.store.listeners.append(self.changed)

    def changed(self, message: str) -> None:
        """A change message of the model store's channel: a registry change drops its name."""
        if message.startswith(ENTRY):
            self.forget(message[len(ENTRY) :])

    def forget(self, name: str) -> None:
        with self._lock:
            self._evictions += 1
            self._tables.pop(name, None)
            for ref in self._refs_of.pop(name, ()):
                self._answers.pop(ref, None)

    def clear(self) -> None:
        with self._lock:
            self._evictions += 1
            self._tables.clear()
            self._answers.clear()
            self._refs_of.clear()

    def _trusted(self) -> bool:
        return self.watch is not None and self.watch.healthy()

    def resolve(self, ref: str) -> Resolved | None:
        """What ref names: None for a model key (a key's form, or text that is no registered
        name), else the Resolved model; UnknownName/UnknownAlias/UnknownVersion (404) for a
        qualified reference that names nothing."""
        answered = self._answers.get(ref, _MISS)
        if answered is not _MISS and self._trusted():
            return answered
        parsed = _parsed(ref) if len(ref) <= MAX_REFERENCE else None  # a path's text can be any length
        if parsed is None:
            return None
        name, alias, version = parsed
        evictions = self._evictions
        table = self._table(name)
        if table is None:
            if alias is None and version is None:
                self._remember(ref, name, None, evictions)
                return None  # a bare word no name has: a model key, as before names existed
            raise self.registry.unknown(name)
        bare = alias is None and version is None
        if version is None:
            version = table["aliases"].get(alias or PRODUCTION)
            if version is None:
                raise unknown_alias(self.registry.entry(name), alias or PRODUCTION)
        key = table["versions"].get(version)
        if key is None:
            raise unknown_version(self.registry.entry(name), version)
        resolved = Resolved(key, name, version, traffic_of(table, name, key) if bare else None)
        self._remember(ref, name, resolved, evictions)
        return resolved

    def _remember(self, ref: str, name: str, resolved: Resolved | None, evictions: int) -> None:
        with self._lock:
            if self._evictions != evictions:
                return  # a change came in while it was resolved: it may be stale already
            if len(self._answers) >= self._size:
                self._answers.clear()
                self._refs_of.clear()
            self._answers[ref] = resolved
            self._refs_of.setdefault(name, set()).add(ref)

    def _table(self, name: str) -> dict[str, Any] | None:
        trusted = self._trusted()
        token = None if trusted else self.registry.token(name)
        with self._lock:
            cached = self._tables.get(name)
            if cached is not None and (trusted or cached[0] == token):
                self._tables.move_to_end(name)
                return cached[1]
            evictions = self._evictions
        token, table = self.registry.table(name)
        if table is not None:
            versions = {int(v): k for v, k in table["versions"].items()}
            table = {"aliases": table["aliases"], "versions": versions, "traffic": table.get("traffic")}
        with self._lock:
            if self._evictions == evictions:  # not evicted while it was read
                self._tables[name] = (token, table)
                self._tables.move_to_end(name)
                while len(self._tables) > self._size:
                    self._tables.popitem(last=False)
        return table


def traffic_of(table: dict[str, Any], name: str, production_key: str) -> Traffic | None:
    """A bare name's traffic setting resolved against its table: None without one, or while its
    alias points nowhere or to production's own model (nothing else to try)."""
    setting = table.get("traffic")
    if not setting:
        return None
    version = table["aliases"].get(setting["alias"])
    key = table["versions"].get(version) if version is not None else None
    if key is None or key == production_key:
        return None
    return Traffic(setting["mode"], float(setting.get("percent") or 0.0), Resolved(key, name, version))
