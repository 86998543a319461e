import os
import socket
import threading
import time
import uuid
from collections import Counter

import pymongo
import pymongo.errors
import pytest

import predictionservice.tempcollections as tc
from helpers import KillableMongo
from predictionservice.tempcollections import (
    LOADING_PREFIX,
    WRITING_PREFIX,
    IdClash,
    aside_name,
    drop_stale,
    marker_name,
    publish,
    recover,
    recover_server,
    temp_name,
)


def test_names_carry_their_creation_time_and_fit_mongodb(mongo_db):
    name = temp_name("__writing_", "x" * 300)
    assert name.startswith("__writing_") and len(name) == 120
    born = int(name[len("__writing_") :].split("_", 1)[0], 16)
    assert abs(born - time.time()) < 5
    assert temp_name("__writing_", "out") != temp_name("__writing_", "out")


def test_only_stale_temporary_collections_of_the_prefix_are_dropped(mongo_db):
    old = f"__writing_{int(time.time()) - 2 * 24 * 3600:x}_deadbeef_out"
    fresh = temp_name("__writing_", "out")
    other = f"__loading_{int(time.time()) - 2 * 24 * 3600:x}_deadbeef_out"
    odd = "__writing_notanumber_out"
    for name in (old, fresh, other, odd, "out"):
        mongo_db[name].insert_one({"x": 1})
    assert drop_stale(mongo_db, "__writing_") == [old]
    assert sorted(mongo_db.list_collection_names()) == sorted([fresh, other, odd, "out"])
    assert drop_stale(mongo_db, "__loading_", max_age=3600) == [other]


def test_publish_replaces_or_appends_all_or_nothing_and_leaves_no_temporary_collection(mongo_db):
    mongo_db.target.insert_many([{"_id": 1, "v": "old"}])
    mongo_db.t1.insert_many([{"_id": 2, "v": "new"}, {"_id": 3, "v": "new"}])
    publish(mongo_db, "t1", "target", replace=False)
    assert sorted(d["_id"] for d in mongo_db.target.find()) == [1, 2, 3]
    mongo_db.t2.insert_many([{"_id": 4, "v": "new"}, {"_id": 3, "v": "clash"}])
    with pytest.raises(IdClash, match=f"_id 3 already exists in {mongo_db.name}.target"):
        publish(mongo_db, "t2", "target", replace=False)
    assert sorted(d["_id"] for d in mongo_db.target.find()) == [1, 2, 3]
    mongo_db.t3.insert_many([{"_id": 9}])
    publish(mongo_db, "t3", "target", replace=True)
    assert list(mongo_db.target.find()) == [{"_id": 9}]
    assert mongo_db.list_collection_names() == ["target"]


# --- a replace killed at any moment (issue 25, 3.5): the target holds the old or the new data whole ---

OLD, NEW = 300, 200


@pytest.fixture(scope="module")
def killable(tmp_path_factory):
    mongo = KillableMongo(tmp_path_factory.mktemp("killable-mongo"))
    yield mongo
    mongo.stop()


def fill(db, target: str, new_rows: int = NEW, pad: str = "") -> str:
    db[target].insert_many([{"_id": i, "v": "old"} for i in range(OLD)])
    temp = temp_name(WRITING_PREFIX, target)
    db[temp].insert_many([{"_id": 10_000 + i, "v": "new", "pad": pad} for i in range(new_rows)])
    return temp


def assert_whole(db, target: str, new_rows: int = NEW) -> str:
    """The target holds exactly the old or exactly the new documents; nothing else is left, not
    even rows a killed rename left under a name no collection has any more."""
    values = Counter(doc["v"] for doc in db[target].find())
    assert values in (Counter(old=OLD), Counter(new=new_rows)), values
    for name in db.list_collection_names():
        assert name == target, f"{name} left behind"
    return next(iter(values))


@pytest.mark.app  # a SecantusDB server process of its own (KillableMongo)
@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="needs a MongoDB server of its own to kill")
@pytest.mark.parametrize(
    ("crash_after", "outcome"),
    [("marked", "finished"), ("aside", "finished"), ("renamed", "done"), ("dropped", "done")],
)
def test_a_replace_killed_after_any_step_is_recovered_whole_at_the_next_start(killable, crash_after, outcome):
    client, name = killable.client(), f"k_{uuid.uuid4().hex[:8]}"
    temp = fill(client[name], "out")

    def step(done: str) -> None:
        if done == crash_after:
            killable.kill()

    with pytest.raises(pymongo.errors.PyMongoError):
        publish(client[name], temp, "out", replace=True, step=step, recover_wait=0)
    client.close()
    killable.restart()
    with killable.client() as client:
        recovered = recover_server(client)  # what the worker runs at its start
        # Every step is journaled: once marked, the new documents are whole and the publish goes on.
        assert assert_whole(client[name], "out") == "new", recovered
        assert recovered == [f"{name}.out: {outcome} (publish of {temp})"]
        client.drop_database(name)


@pytest.mark.app  # a SecantusDB server process of its own (KillableMongo)
@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="needs a MongoDB server of its own to kill")
def test_a_replace_killed_in_the_middle_of_a_rename_is_recovered_whole(killable):
    """The reproduction: MongoDB SIGKILLed 1 s into the rename of 30,000 documents into place (a
    server whose rename moves them one by one is torn half-way: some under each name)."""
    client, name, rows = killable.client(), f"k_{uuid.uuid4().hex[:8]}", 30_000
    temp = fill(client[name], "out", rows, pad="p" * 200)

    def step(done: str) -> None:
        if done == "aside":  # the rename of the new documents into place starts now
            threading.Timer(1.0, killable.kill).start()

    with pytest.raises(pymongo.errors.PyMongoError):
        publish(client[name], temp, "out", replace=True, step=step, recover_wait=0)
    client.close()
    killable.server.process.wait(30)
    killable.restart()
    with killable.client() as client:
        recovered = recover_server(client)
        assert len(recovered) == 1 and assert_whole(client[name], "out", rows) in ("old", "new"), recovered
        client.drop_database(name)


def marker_doc(temp: str, target: str, *, rows: int, old_rows, replace: bool = True, owner=None) -> dict:
    return {"_id": "publish", "temp": temp, "target": target, "aside": aside_name(temp, target), "rows": rows,
            "old_rows": old_rows, "replace": replace, "owner": owner or tc._owner(), "at": time.time()}  # fmt: skip


def test_recovery_puts_the_old_data_back_when_the_new_was_torn_and_finishes_when_it_is_whole(mongo_db):
    # The rename of the new documents into place killed half-way: the old ones wait aside.
    torn = temp_name(WRITING_PREFIX, "a")
    mongo_db[aside_name(torn, "a")].insert_many([{"_id": i, "v": "old"} for i in range(OLD)])
    mongo_db[torn].insert_many([{"_id": 10_000 + i, "v": "new"} for i in range(50)])
    mongo_db[marker_name(torn)].insert_one(marker_doc(torn, "a", rows=NEW, old_rows=OLD))
    # The rename aside killed half-way: the new documents are whole.
    whole = temp_name(WRITING_PREFIX, "b")
    mongo_db.b.insert_many([{"_id": i, "v": "old"} for i in range(100)])
    mongo_db[whole].insert_many([{"_id": 10_000 + i, "v": "new"} for i in range(NEW)])
    mongo_db[marker_name(whole)].insert_one(marker_doc(whole, "b", rows=NEW, old_rows=OLD))
    # An append killed during its merge: part of it is in the target.
    merging = temp_name(LOADING_PREFIX, "c")
    mongo_db.c.insert_many([{"_id": i, "v": "old"} for i in range(OLD)] + [{"_id": 10_000, "v": "new"}])
    mongo_db[merging].insert_many([{"_id": 10_000 + i, "v": "new"} for i in range(NEW)])
    mongo_db[marker_name(merging)].insert_one(marker_doc(merging, "c", rows=NEW, old_rows=None, replace=False))

    outcomes = sorted(recover(mongo_db))
    assert [line.split(": ")[1].split(" ")[0] for line in outcomes] == ["restored", "finished", "finished"]
    assert Counter(d["v"] for d in mongo_db.a.find()) == Counter(old=OLD)
    assert Counter(d["v"] for d in mongo_db.b.find()) == Counter(new=NEW)
    assert Counter(d["v"] for d in mongo_db.c.find()) == Counter(old=OLD, new=NEW)
    assert sorted(mongo_db.list_collection_names()) == ["a", "b", "c"]


def test_a_publish_whose_owner_still_runs_is_left_to_it(mongo_db):
    parent = os.getppid()  # alive: pytest's parent
    owner = {"host": socket.gethostname(), "pid": parent, "started": tc._process_start(parent)}
    temp = temp_name(WRITING_PREFIX, "x")
    mongo_db[temp].insert_one({"_id": 1})
    mongo_db[marker_name(temp)].insert_one(marker_doc(temp, "x", rows=1, old_rows=None, owner=owner))
    assert recover(mongo_db) == []
    assert drop_stale(mongo_db, WRITING_PREFIX, max_age=-1) == []  # marked complete: not swept either
    gone = {**owner, "started": "another process"}  # the pid was reused: its owner is gone
    mongo_db[marker_name(temp)].update_one({}, {"$set": {"owner": gone}})
    assert recover(mongo_db) == [f"{mongo_db.name}.x: finished (publish of {temp})"]
    assert list(mongo_db.x.find()) == [{"_id": 1}] and mongo_db.list_collection_names() == ["x"]


def test_publish_collections_are_hidden_from_the_list_and_refused_as_names(client, mongo_db):
    temp = temp_name(WRITING_PREFIX, "kept")
    for name in ("kept", temp, marker_name(temp), aside_name(temp, "kept")):
        mongo_db[name].insert_one({"x": 1})
    listed = [d["collection"] for d in client.get("/datasets/").json()["datasets"] if d["db"] == mongo_db.name]
    assert listed == ["kept"]
    for name in (marker_name(temp), aside_name(temp, "kept")):
        answer = client.get(f"/datasets/{mongo_db.name}/{name}/export")
        assert answer.status_code == 400 and "temporary collections" in answer.json()["error"]["message"]
