"""Stored models, the operations: list, show and delete what training put in the model store,
with no web framework. The ``/models/`` routes, the model pages and V2's metadata (web/) only
parse, call ``Models`` and render; a scheduler can call it the same way. Storage itself (the
Redis layout, versions, the change channel) is ``predictionservice.modelstore``."""

from __future__ import annotations

from typing import Any

from predictionservice.exceptions import NotFound, shown
from predictionservice.modelstore import ModelStore, detail


class Models:
    """The stored models of one model store; a missing one is NotFound, in the API's words."""

    def __init__(self, store: ModelStore):
        self.store = store

    def listing(self) -> list[dict[str, Any]]:
        return self.store.summaries()

    def stored(self, key: str) -> dict[str, Any]:
        """The model as stored (its schema, parameters and numbers)."""
        loaded = self.store.load(key)
        if loaded is None:
            raise NotFound(f"model {shown(key)} not found")
        return loaded[0]

    def show(self, key: str) -> dict[str, Any]:
        """The model as GET /models/<key> shows it."""
        return detail(key, self.stored(key))

    def delete(self, key: str) -> None:
        if not self.store.delete(key):
            raise NotFound(f"model {shown(key)} not found")
