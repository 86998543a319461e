"""worker.undo_model on a real Redis: a cancelled job's model is removed, and when the promotion
gate had moved production to it, production goes back to the version it took over from (the
name keeps answering) instead of being left without one."""

from __future__ import annotations

import pytest

from helpers import ONE_FEATURE_MODEL
from predictionservice.gate import record
from predictionservice.modelstore import ModelStore
from predictionservice.registry import UNDONE, Registry
from worker import undo_model

pytestmark = pytest.mark.app

NAME = "undone"


@pytest.fixture()
def named(redis_db):
    """Version 1 in production; version 2 added and promoted by the gate."""
    store = ModelStore(redis_db)
    registry = Registry(store)
    for key in ("k1", "k2"):
        store.save(key, {**ONE_FEATURE_MODEL, "task": "binary", "model_key": key})
        registry.add_version(NAME, key, {**ONE_FEATURE_MODEL, "task": "binary"})
    decision = record({"metric": "auc"}, 1, "promoted", "better")
    registry.decide(NAME, 2, decision, promote=True, if_production=1)
    assert registry.entry(NAME)["aliases"]["production"] == 2
    return store, registry, decision


def test_undoing_a_promoted_version_gives_production_back(named):
    store, registry, decision = named
    undo_model(store, "k2", NAME, decision)
    entry = registry.entry(NAME)
    assert entry["aliases"]["production"] == 1 and [v["version"] for v in entry["versions"]] == [1]
    assert store.load("k2") is None
    assert any(move.get("why") == UNDONE and move.get("to") == 1 for move in entry["history"]), entry["history"]


def test_undoing_a_kept_version_leaves_production_alone(named):
    store, registry, _ = named
    registry.move(NAME, "production", 1)
    kept = record({"metric": "auc"}, 1, "kept", "not better")
    undo_model(store, "k2", NAME, kept)
    assert registry.entry(NAME)["aliases"] == {"production": 1} and store.load("k2") is None


def test_a_model_of_no_name_is_simply_deleted(redis_db):
    store = ModelStore(redis_db)
    store.save("plain", {**ONE_FEATURE_MODEL, "model_key": "plain"})
    undo_model(store, "plain", None)
    assert store.load("plain") is None
