"""Stored models, the operations: list, show and delete what training put in the model store,
with no web framework. The ``/models/`` routes, the model pages and V2's metadata (web/) only
parse, call ``Models`` and render; a scheduler can call it the same way. Storage itself (the
Redis layout, versions, the change channel) is ``predictionservice.modelstore``."""

from __future__ import annotations

from typing import Any

from predictionservice.exceptions import NotFound, shown
from predictionservice.modelstore import ModelStore, detail
from predictionservice.references import Resolved
from predictionservice.registry import Registry


class Models:
    """The stored models of one model store; a missing one is NotFound, in the API's words. With
    a registry, a model is also found by a named model's reference (references: the resolver),
    and a version an alias points to is not deleted."""

    def __init__(self, store: ModelStore, registry: Registry | None = None, references: Any = None):
        self.store = store
        self.registry = registry
        self.references = references

    def listing(self) -> list[dict[str, Any]]:
        return self.store.summaries()

    def resolve(self, ref: str) -> tuple[str, Resolved | None]:
        """The model key ref names, and what it resolved (None: ref is a key)."""
        resolved = self.references.resolve(ref) if self.references is not None else None
        return (ref, None) if resolved is None else (resolved.key, resolved)

    def stored(self, key: str) -> dict[str, Any]:
        """The model as stored (its schema, parameters and numbers)."""
        loaded = self.store.load(key)
        if loaded is None:
            raise NotFound(f"model {shown(key)} not found")
        return loaded[0]

    def lookup(self, ref: str) -> tuple[str, dict[str, Any]]:
        """(the model key ref names, the model as stored): a key or a named model's reference;
        NotFound when it names no stored model."""
        key, _ = self.resolve(ref)
        return key, self.stored(key)

    def show(self, ref: str) -> dict[str, Any]:
        """The model as GET /models/<ref> shows it; a named model's says which version it is."""
        key, resolved = self.resolve(ref)
        shown_model = detail(key, self.stored(key))
        if resolved is not None:
            shown_model["model"] = resolved.shown()
        return shown_model

    def delete(self, ref: str) -> None:
        """Delete a model (and its version from its name): AliasInUse (409) while an alias
        points to it."""
        key, _ = self.resolve(ref)
        deleted = self.registry.delete_model(key) if self.registry is not None else self.store.delete(key)
        if not deleted:
            raise NotFound(f"model {shown(key)} not found")
