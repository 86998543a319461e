import time

import pytest

from predictionservice.tempcollections import IdClash, drop_stale, publish, temp_name


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
