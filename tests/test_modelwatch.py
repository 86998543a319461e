"""modelwatch.py: model changes pushed to the predictor cache over Redis pub/sub, against the
session's real redis-server: a healthy subscription saves the per-request version check, every
change reaches every cache within 100 ms, and a lost or silent subscription falls back to the
per-request check (the cache emptied) until it is back."""

import time

import pytest
import redis

from modelfactory import ModelFactory
from predictionservice.exceptions import NotFound
from predictionservice.modelstore import ModelStore
from predictionservice.modelwatch import ModelWatch
from predictionservice.predictorcache import PredictorCache
from tests.test_modelfactory import ALLOWED, RECORD, stored_model

YES = stored_model([1.0, 2.0, -1.0], 0.5)  # RECORD scores 'yes'
NO = stored_model([-1.0, 0.0, 0.0], 0.0)  # RECORD scores 'no'


def replica(redis_db, ping=0.05):
    """One web process's store and cache, watching the store's channel (its own connections)."""
    client = redis.Redis(connection_pool=redis.ConnectionPool(**redis_db.connection_pool.connection_kwargs))
    store = ModelStore(client)
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    cache.watch = ModelWatch(client, store.channel, cache.forget, cache.clear, ping_interval=ping)
    return store, cache


def until(condition, timeout):
    """Seconds until condition() held, polled every millisecond; None when it did not in time."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.001)
    return None


def label(cache, key="m1"):
    try:
        return cache.get(key).predict([RECORD])[0]["label"]
    except NotFound:
        return None


def healthy(cache, timeout=5.0):
    assert until(cache.watch.healthy, timeout) is not None, "the subscription was not confirmed"


def hgets(client):
    return client.info("commandstats").get("cmdstat_hget", {}).get("calls", 0)


@pytest.fixture()
def two(redis_db):
    a, b = replica(redis_db), replica(redis_db)
    yield a, b
    for _, cache in (a, b):
        cache.watch.stop()


def test_a_healthy_subscription_serves_the_cached_predictor_without_a_redis_call(two, redis_db):
    (store, cache), _ = two
    store.save("m1", YES)
    healthy(cache)
    first = cache.get("m1")
    before = hgets(redis_db)
    assert all(cache.get("m1") is first for _ in range(200))
    assert hgets(redis_db) == before
    assert cache.hits >= 200


def test_without_a_watch_every_lookup_reads_the_version(redis_db):
    store = ModelStore(redis_db)
    cache = PredictorCache(ModelFactory(ALLOWED), store)
    store.save("m1", YES)
    cache.get("m1")
    before = hgets(redis_db)
    for _ in range(10):
        cache.get("m1")
    assert hgets(redis_db) - before == 10


def test_the_replica_that_deletes_or_replaces_a_model_never_answers_it_again(two):
    (store, cache), _ = two
    store.save("m1", YES)
    healthy(cache)
    assert label(cache) == "yes"
    store.save("m1", NO)
    assert label(cache) == "no"  # at once: no waiting for the message to come back
    store.delete("m1")
    assert label(cache) is None


def test_every_other_replica_stops_answering_a_replaced_or_deleted_model_within_100_ms(two):
    (a_store, a), (_, b) = two
    a_store.save("m1", YES)
    healthy(a), healthy(b)
    assert label(a) == "yes" and label(b) == "yes"
    a_store.save("m1", NO)
    assert until(lambda: label(b) == "no", 0.1) is not None
    a_store.delete("m1")
    assert label(a) is None
    assert until(lambda: label(b) is None, 0.1) is not None


def test_a_change_by_another_process_reaches_the_cache(two, redis_db):
    """A worker saving a retrained model has a store of its own and no cache."""
    (_, a), _ = two
    worker_store = ModelStore(redis_db)
    worker_store.save("m1", YES)
    healthy(a)
    assert label(a) == "yes"
    worker_store.save("m1", NO)
    assert until(lambda: label(a) == "no", 0.1) is not None


def test_a_killed_subscription_falls_back_to_the_version_check_then_recovers(two, redis_db):
    (store, cache), _ = two
    store.save("m1", YES)
    healthy(cache)
    cache.get("m1")
    resets = cache.watch.resets
    redis_db.client_kill_filter(_type="pubsub")
    assert until(lambda: cache.watch.resets > resets, 2.0) is not None  # lost: the cache emptied
    healthy(cache)  # subscribed again (and emptied again)
    store.save("m1", NO)
    assert label(cache) == "no"


def test_a_silent_redis_makes_the_subscription_untrusted(two, redis_db):
    """A Redis that stops answering (paused here) is not a healthy subscription: after four
    unanswered pings every lookup goes back to the per-request check."""
    (store, cache), _ = two
    store.save("m1", YES)
    healthy(cache)
    redis_db.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    try:
        assert until(lambda: not cache.watch.healthy(), 1.2) is not None
    finally:
        redis_db.execute_command("CLIENT", "UNPAUSE")
    healthy(cache)
    assert label(cache) == "yes"


def test_a_load_that_races_a_change_is_served_but_not_cached(two, redis_db):
    """A model read just before another process replaced it must not stay in a cache that is
    trusted without a version check: the change's message arrived while it was being read."""
    (store, cache), _ = two
    store.save("m1", YES)
    healthy(cache)
    real_load = store.load

    def load_then_replaced(key):
        loaded = real_load(key)
        evictions = cache._evictions
        ModelStore(redis_db).save(key, NO)
        assert until(lambda: cache._evictions > evictions, 1.0) is not None
        return loaded

    store.load = load_then_replaced
    assert label(cache) == "yes"  # the answer of the model as it was read
    store.load = real_load
    assert label(cache) == "no"


def test_a_dropped_cache_stops_its_subscriber_thread(redis_db):
    import gc
    import threading

    store, cache = replica(redis_db)
    healthy(cache)
    thread = cache.watch._thread
    del store, cache
    gc.collect()
    thread.join(2.0)
    assert not thread.is_alive()
    assert "model-watch" not in [t.name for t in threading.enumerate() if t is thread]


def test_the_channel_carries_the_database_and_the_prefix(redis_db):
    assert ModelStore(redis_db).channel == "__model_changes__:9"
    assert ModelStore(redis_db, "svc:").channel == "svc:__model_changes__:9"
