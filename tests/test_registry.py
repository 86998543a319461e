"""registry.py (and references.py, its resolution in a web process): named models in a real Redis
(db 9) beside the models: versions written in the model's own transaction, aliases and their
history, validation that changes nothing, and resolutions evicted by the change channel."""

import json
import threading
import time

import pytest
import redis

from predictionservice.exceptions import (
    AliasInUse,
    BadAlias,
    BadName,
    InvalidRequest,
    NotFound,
    UnknownAlias,
    UnknownName,
    UnknownVersion,
)
from predictionservice.modelstore import ModelStore
from predictionservice.modelwatch import ModelWatch
from predictionservice.references import References, Resolved
from predictionservice.registry import ENTRY, Registry, check_alias, check_name, parse_reference

KEY1, KEY2, KEY3 = "a" * 32, "b" * 32, "c" * 32


def model(task="binary", auc=0.8, **extra):
    return {"name": "LogisticRegressionWrapper", "task": task, "created_at": "2026-01-01T00:00:00Z",
            "metrics": {"auc": auc}, "coefficients": [1.0], "intercept": 0.0, **extra}  # fmt: skip


@pytest.fixture()
def store(redis_db):
    return ModelStore(redis_db, "svc:")


@pytest.fixture()
def registry(store):
    return Registry(store)


def everything(client) -> dict:
    """Every key of the database with its value, to show that nothing changed."""
    out = {}
    for key in client.keys("*"):
        kind = client.type(key).decode()
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "set":
            out[key] = client.smembers(key)
    return out


def test_the_first_version_is_production_and_a_later_one_the_candidate(registry, store):
    first = registry.add_version("bank", KEY1, model(auc=0.7))
    assert first == {"version": 1, "model_key": KEY1, "created_at": "2026-01-01T00:00:00Z",
                     "metrics": {"auc": 0.7}, "decision": None}  # fmt: skip
    second = registry.add_version("bank", KEY2, model(auc=0.9))
    assert second["version"] == 2
    shown = registry.show("bank")
    assert shown["name"] == "bank"
    assert shown["aliases"] == {"production": 1, "candidate": 2}
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["policy"] == {"metric": "auc", "min_delta": 0.0, "auto_promote": True}
    assert shown["schedule"] is None
    history = shown["history"]
    assert [(h["alias"], h["from"], h["to"], h["why"]) for h in history] == [
        ("candidate", None, 2, "new version"),
        ("production", None, 1, "first version"),
    ]
    assert all(h["time"].endswith("Z") for h in history)
    assert store.load(KEY1)[0]["metrics"] == {"auc": 0.7} and store.load(KEY2) is not None


def test_the_default_metric_follows_the_task(registry):
    registry.add_version("multi", KEY1, model(task="multiclass"))
    registry.add_version("reg", KEY2, model(task="regression"))
    assert registry.show("multi")["policy"]["metric"] == "log_loss"
    assert registry.show("reg")["policy"]["metric"] == "rmse"


def test_the_listing_shows_names_and_their_latest_version_and_models_never_show_the_registry(registry, store):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    registry.add_version("churn", KEY3, model())
    listed = registry.listing()
    assert [m["name"] for m in listed] == ["bank", "churn"]
    assert listed[0]["aliases"] == {"production": 1, "candidate": 2}
    assert listed[0]["versions"] == 2 and listed[0]["latest"]["model_key"] == KEY2
    assert sorted(store.keys()) == [KEY1, KEY2, KEY3]
    assert [m["model_key"] for m in store.summaries()] != [] and store.count() == 3


def test_a_version_is_stored_with_its_model_in_one_transaction_and_published(registry, store, redis_db):
    pubsub = redis_db.pubsub()
    pubsub.subscribe(store.channel)
    heard_here = []
    store.listeners.append(heard_here.append)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    calls = redis_db.info("commandstats").get("cmdstat_exec", {}).get("calls", 0)
    registry.add_version("bank", KEY1, model())
    assert redis_db.info("commandstats")["cmdstat_exec"]["calls"] == calls + 1  # one MULTI/EXEC
    messages = [pubsub.get_message(timeout=1)["data"].decode() for _ in range(2)]
    assert messages == [KEY1, ENTRY + "bank"]
    assert heard_here == [KEY1, ENTRY + "bank"]  # this process hears it before the call returns
    pubsub.close()


def test_a_model_that_cannot_be_stored_makes_no_version(registry, redis_db):
    with pytest.raises(TypeError):
        registry.add_version("bank", KEY1, model(bad={1, 2}))  # a set is not JSON
    assert everything(redis_db) == {}


def test_a_bad_name_stores_nothing(registry, redis_db):
    for name in ["", "-bank", "_bank", "a" * 65, "bank!", "bank@production", "bank/1", "0123456789abcdef" * 2]:
        with pytest.raises(BadName) as refused:
            registry.add_version(name, KEY1, model())
        assert refused.value.status == 400
    assert everything(redis_db) == {}


def test_the_same_model_saved_again_stays_its_version(registry, store):
    """A redelivered job stores its model again under the same key: no second version."""
    registry.add_version("bank", KEY1, model(auc=0.7))
    again = registry.add_version("bank", KEY1, model(auc=0.75))
    assert again["version"] == 1
    assert len(registry.show("bank")["versions"]) == 1
    assert store.load(KEY1)[0]["metrics"] == {"auc": 0.75}


def test_versions_added_at_once_by_many_workers_are_numbered_without_a_gap_or_a_loss(redis_db):
    def worker(n):
        client = redis.Redis(connection_pool=redis.ConnectionPool(**redis_db.connection_pool.connection_kwargs))
        registry = Registry(ModelStore(client, "svc:"))
        for i in range(5):
            registry.add_version("bank", f"{n:02d}{i:030d}", model())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    versions = Registry(ModelStore(redis_db, "svc:")).show("bank")["versions"]
    assert [v["version"] for v in versions] == list(range(1, 41))
    assert len({v["model_key"] for v in versions}) == 40


def test_an_alias_moves_and_every_move_is_in_the_history_newest_first(registry):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    entry = registry.move("bank", "production", 2)
    assert entry["aliases"] == {"production": 2, "candidate": 2}
    assert entry["history"][0] | {"time": None} == {"time": None, "alias": "production", "from": 1, "to": 2,
                                                    "why": "manual"}  # fmt: skip
    assert registry.move("bank", "production", 2)["history"] == entry["history"]  # no move, nothing kept
    entry = registry.move("bank", "staging", 1)
    assert entry["aliases"]["staging"] == 1
    entry = registry.remove_alias("bank", "staging")
    assert "staging" not in entry["aliases"]
    assert [(h["alias"], h["from"], h["to"]) for h in entry["history"][:2]] == [("staging", 1, None),
                                                                                ("staging", None, 1)]  # fmt: skip


def test_refused_moves_name_what_exists_and_change_nothing(registry, redis_db):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    before = everything(redis_db)
    with pytest.raises(UnknownVersion, match=r"'bank' has no version 7 \(versions: 1, 2\)") as refused:
        registry.move("bank", "production", 7)
    assert refused.value.status == 404 and refused.value.details[0]["versions"] == [1, 2]
    with pytest.raises(UnknownName, match=r"no model named 'nope' \(names: bank\)"):
        registry.move("nope", "production", 1)
    with pytest.raises(BadAlias):
        registry.move("bank", "Production", 1)
    with pytest.raises(InvalidRequest, match="'version' must be a version number"):
        registry.move("bank", "production", "2")
    with pytest.raises(InvalidRequest):
        registry.move("bank", "production", True)
    with pytest.raises(UnknownAlias, match=r"no alias 'staging' \(aliases: candidate -> 2, production -> 1\)"):
        registry.remove_alias("bank", "staging")
    with pytest.raises(UnknownName):
        registry.show("nope")
    with pytest.raises(BadName):
        registry.show("-x")
    assert everything(redis_db) == before


def test_a_model_an_alias_points_to_is_not_deleted(registry, store, redis_db):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    before = everything(redis_db)
    with pytest.raises(AliasInUse, match="bank@candidate") as refused:
        registry.delete_model(KEY2)
    assert refused.value.status == 409 and refused.value.details[0]["aliases"] == ["candidate"]
    assert everything(redis_db) == before
    registry.remove_alias("bank", "candidate")
    assert registry.delete_model(KEY2) is True
    assert store.load(KEY2) is None
    assert [v["version"] for v in registry.show("bank")["versions"]] == [1]
    assert registry.add_version("bank", KEY3, model())["version"] == 3  # numbers are never reused
    assert registry.delete_model("d" * 32) is False
    for reserved in ["__versions__", "__registry_names__", "__registry__:bank", "__registry_keys__"]:
        assert registry.delete_model(reserved) is False
    assert registry.show("bank")["aliases"] == {"production": 1, "candidate": 3} and store.count() == 2
    assert store.delete(KEY1) is True  # the store alone knows no names (the worker's undo of a plain job)


def test_a_cancelled_jobs_model_goes_with_its_aliases(registry, store):
    registry.add_version("bank", KEY1, model())
    assert registry.delete_model(KEY1, force=True) is True
    shown = registry.show("bank")
    assert shown["versions"] == [] and shown["aliases"] == {}
    assert shown["history"][0]["alias"] == "production" and shown["history"][0]["to"] is None


def test_deleting_a_name_keeps_its_models(registry, store, redis_db):
    registry.add_version("bank", KEY1, model())
    registry.delete_name("bank")
    assert registry.listing() == [] and registry.names() == []
    assert store.load(KEY1) is not None
    assert registry.name_of(KEY1) is None
    assert store.delete(KEY1) is True
    with pytest.raises(UnknownName, match="no model has a name yet"):
        registry.delete_name("bank")


def test_the_policy_changes_and_bad_policies_name_the_field_and_change_nothing(registry, redis_db):
    registry.add_version("bank", KEY1, model())
    assert registry.set_policy("bank", {"metric": "log_loss", "min_delta": 0.01})["policy"] == {
        "metric": "log_loss", "min_delta": 0.01, "auto_promote": True}  # fmt: skip
    before = everything(redis_db)
    bad = [
        ({"metric": "rmse"}, "metric"),  # not a binary model's
        ({"metric": 3}, "metric"),
        ({"min_delta": -1}, "min_delta"),
        ({"min_delta": "0.1"}, "min_delta"),
        ({"min_delta": True}, "min_delta"),
        ({"min_delta": float("inf")}, "min_delta"),
        ({"auto_promote": "yes"}, "auto_promote"),
        ({"speed": 1}, "speed"),
        ({}, ""),
        ([], ""),
    ]
    for body, field in bad:
        with pytest.raises(InvalidRequest) as refused:
            registry.set_policy("bank", body)
        assert refused.value.status == 400 and refused.value.details[0]["field"] == field, body
    assert everything(redis_db) == before


def test_a_gate_decision_is_recorded_and_promotes(registry):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    entry = registry.decide("bank", 2, {"decision": "promoted", "production": 0.7, "candidate": 0.9}, promote=True)
    assert entry["aliases"]["production"] == 2
    assert entry["versions"][1]["decision"]["decision"] == "promoted"
    assert entry["history"][0]["why"] == "promoted"


@pytest.mark.parametrize(
    ("text", "ok"),
    [("bank", True), ("Bank.v2_x-1", True), ("7up", True), ("a" * 64, True), ("a" * 65, False), ("", False),
     (".bank", False), ("ba nk", False), ("f" * 32, False), ("F" * 32, False), ("f" * 31, True)],
)  # fmt: skip
def test_name_validation(text, ok):
    if ok:
        assert check_name(text) == text
    else:
        with pytest.raises(BadName):
            check_name(text)


def test_alias_validation():
    assert check_alias("production") == "production" and check_alias("a" + "-" * 31)
    for bad in ["", "Prod", "1st", "a" * 33, "prod@x", 3]:
        with pytest.raises(BadAlias):
            check_alias(bad)


def test_reference_forms():
    assert parse_reference("bank") == ("bank", None, None)
    assert parse_reference("bank@production") == ("bank", "production", None)
    assert parse_reference("bank/3") == ("bank", None, 3)
    assert parse_reference("a" * 64 + "@" + "b" * 32) == ("a" * 64, "b" * 32, None)  # the longest
    for key_or_nothing in ["a" * 32, "a" * 32 + "@production", "bank/0", "bank@Prod", "bank/x", "my:", "k" * 10_000]:
        assert parse_reference(key_or_nothing) is None, key_or_nothing


# ------------------------------------------------------------------ references (a web process)


def test_references_resolve_names_aliases_and_versions(registry):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    references = References(registry)
    assert references.resolve("bank") == Resolved(KEY1, "bank", 1)
    assert references.resolve("bank@candidate") == Resolved(KEY2, "bank", 2)
    assert references.resolve("bank/2").shown() == {"name": "bank", "version": 2, "model_key": KEY2}
    assert references.resolve(KEY1) is None  # a key as it is
    assert references.resolve("legacy-key") is None  # a bare word no name has: a key, as before
    with pytest.raises(UnknownAlias, match="aliases: candidate -> 2, production -> 1"):
        references.resolve("bank@staging")
    with pytest.raises(UnknownVersion, match="versions: 1, 2"):
        references.resolve("bank/9")
    with pytest.raises(UnknownName, match="names: bank"):
        references.resolve("churn@production")
    assert isinstance(UnknownName("x"), NotFound)


def test_a_move_in_this_process_is_resolved_at_once(registry):
    registry.add_version("bank", KEY1, model())
    references = References(registry)
    assert references.resolve("fresh") is None  # remembered as no name ...
    registry.add_version("bank", KEY2, model())
    registry.add_version("fresh", KEY3, model())
    assert references.resolve("fresh").key == KEY3  # ... until the name is made
    assert references.resolve("bank@candidate").key == KEY2
    registry.move("bank", "production", 2)
    assert references.resolve("bank").key == KEY2


def other_process(redis_db) -> Registry:
    client = redis.Redis(connection_pool=redis.ConnectionPool(**redis_db.connection_pool.connection_kwargs))
    return Registry(ModelStore(client, "svc:"))


def test_without_a_subscription_each_resolution_checks_the_names_token(registry, redis_db):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    references = References(registry)
    assert references.resolve("bank").key == KEY1
    other_process(redis_db).move("bank", "production", 2)  # a replica: no listener of ours
    assert references.resolve("bank").key == KEY2


def test_a_subscription_carries_another_replicas_move_within_100_ms(registry, store, redis_db):
    registry.add_version("bank", KEY1, model())
    registry.add_version("bank", KEY2, model())
    references = References(registry)
    watch = ModelWatch(store.client, store.channel, references.changed, references.clear, ping_interval=0.05)
    references.watch = watch
    try:
        deadline = time.monotonic() + 5
        while not watch.healthy():
            assert time.monotonic() < deadline, "the subscription was not confirmed"
            time.sleep(0.01)
        assert references.resolve("bank").key == KEY1
        hgets = redis_db.info("commandstats").get("cmdstat_hget", {}).get("calls", 0)
        assert references.resolve("bank").key == KEY1
        assert redis_db.info("commandstats").get("cmdstat_hget", {}).get("calls", 0) == hgets  # trusted: no read
        assert references.resolve("fresh") is None  # no such name: a key, remembered as such
        other_process(redis_db).move("bank", "production", 2)
        other_process(redis_db).add_version("fresh", KEY3, model())
        started = time.monotonic()
        while references.resolve("bank").key != KEY2 or references.resolve("fresh") is None:
            assert time.monotonic() - started < 0.1, "the changes did not arrive within 100 ms"
            time.sleep(0.001)
    finally:
        watch.stop()


def test_the_registry_keys_carry_the_prefix(registry, redis_db):
    registry.add_version("bank", KEY1, model())
    keys = sorted(k.decode() for k in redis_db.keys("*"))
    assert all(k.startswith("svc:") for k in keys), keys
    assert json.loads(redis_db.get("svc:__registry__:bank"))["name"] == "bank"
