import json
import os
import subprocess
import sys
from pathlib import Path

import pymongo
import pytest
from bson import ObjectId
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from dataparser import DataParser, schema_from_documents
from helpers import ref, training_pair
from localservers import embedded
from predictionservice import sparkmongo
from predictionservice.config import pick
from predictionservice.exceptions import RecordError
from predictionservice.sparkfeatures import feature_columns
from predictionservice.sparksession import SparkSettings, read_collection, start_conf, write_collection

ROOT = Path(__file__).resolve().parent.parent


def test_read_over_four_partitions_equals_the_collection(spark, bank_collection):
    # splitScans: SecantusDB scans the collection for a range, so by itself the reader takes one
    df = read_collection(spark, ref(bank_collection), partitions=4, partition_mb=1, split_scans=True).cache()
    assert df.rdd.getNumPartitions() >= 4
    sizes = df.rdd.mapPartitions(lambda rows: [sum(1 for _ in rows)]).collect()
    assert all(size > 0 for size in sizes) and sum(sizes) == 45211
    got = df.agg(F.count("*"), F.sum("balance"), F.sum("age"), F.countDistinct("_id")).first()
    expected = next(
        bank_collection.aggregate(
            [{"$group": {"_id": None, "n": {"$sum": 1}, "balance": {"$sum": "$balance"}, "age": {"$sum": "$age"}}}]
        )
    )
    assert tuple(got) == (45211, expected["balance"], expected["age"], 45211)
    assert dict(df.dtypes)["age"] == "bigint" and dict(df.dtypes)["job"] == "string"
    df.unpersist()


def test_projection_reads_only_the_named_fields(spark, bank_collection):
    df = read_collection(spark, ref(bank_collection), partitions=2, fields=["age", "y"])
    assert df.columns == ["age", "y"]
    assert df.count() == 45211


def test_partitions_cover_every_id_type(spark, mongo_db):
    docs = [{"_id": ObjectId(), "v": i} for i in range(60)]
    docs += [{"_id": i, "v": 100 + i} for i in range(10)] + [{"_id": f"s{i}", "v": 200 + i} for i in range(5)]
    mongo_db.mixed.insert_many(docs)
    df = read_collection(spark, ref(mongo_db.mixed), partitions=4, partition_mb=0.0001, split_scans=True)
    assert sorted(r.v for r in df.collect()) == sorted(d["v"] for d in docs)
    mongo_db.ints.insert_many([{"_id": i, "v": i} for i in range(100)] + [{"_id": "odd", "v": -1}])
    df = read_collection(spark, ref(mongo_db.ints), partitions=4, partition_mb=0.0001, split_scans=True)
    assert df.rdd.getNumPartitions() == 4
    assert sorted(r.v for r in df.collect()) == [-1, *range(100)]


def test_a_server_that_scans_for_a_range_is_read_in_one_partition(spark, bank_collection):
    """Issue 16: SecantusDB answers an _id range by reading the whole collection (its plan says
    COLLSCAN), so four partitions would read bank-full four times: the reader asks the planner
    and reads it once, unless told to split anyway."""
    assert sparkmongo.ranges_scan(bank_collection)
    df = read_collection(spark, ref(bank_collection), partitions=4, partition_mb=1)
    assert df.rdd.getNumPartitions() == 1 and df.count() == 45211


def test_the_plan_leaf_is_found_in_both_of_mongods_explain_shapes():
    classic = {"stage": "FETCH", "inputStage": {"stage": "IXSCAN", "indexName": "_id_"}}
    assert sparkmongo.plan_leaf(classic) == "IXSCAN"
    assert sparkmongo.plan_leaf({"queryPlan": {"stage": "FETCH", "inputStage": {"stage": "CLUSTERED_IXSCAN"}}}) == (
        "CLUSTERED_IXSCAN"
    )
    assert sparkmongo.plan_leaf({"stage": "COLLSCAN", "direction": "forward"}) == "COLLSCAN"
    assert sparkmongo.plan_leaf({}) is None


def test_schema_inference_merges_types(spark, mongo_db):
    mongo_db.c.insert_many([{"a": 1, "b": "x", "n": {"k": 1}}, {"a": 2.5, "b": 3, "n": {"j": "z"}}, {"a": None}])
    df = read_collection(spark, ref(mongo_db.c), partitions=1)
    types = dict(df.dtypes)
    assert types["a"] == "double" and types["b"] == "string" and types["n"] == "struct<k:bigint,j:string>"
    assert sorted(df.select("b").rdd.map(lambda r: r.b or "").collect()) == ["", "3", "x"]


def test_write_replaces_the_target_atomically(spark, mongo_db, bank_collection):
    mongo_db.out.insert_many([{"old": True}])
    df = read_collection(spark, ref(bank_collection), partitions=4, partition_mb=1)
    out = df.select(F.col("age"), F.struct("job", "y").alias("value")).repartition(3)
    write_collection(out, ref(mongo_db.out), batch_size=500)
    assert mongo_db.out.count_documents({}) == 45211
    assert mongo_db.out.count_documents({"old": True}) == 0
    assert set(mongo_db.out.find_one({}, {"_id": 0})) == {"age", "value"}
    assert mongo_db.list_collection_names() == ["out"]


def test_append_merges(spark, mongo_db):
    mongo_db.out.insert_many([{"x": 0}])
    write_collection(spark.range(1, 4).withColumnRenamed("id", "x"), ref(mongo_db.out), batch_size=2, overwrite=False)
    assert sorted(d["x"] for d in mongo_db.out.find()) == [0, 1, 2, 3]


def test_an_append_meeting_an_existing_id_merges_nothing(spark, mongo_db):
    mongo_db.out.insert_many([{"_id": 2, "x": "kept"}])
    rows = spark.range(1, 4).select(F.col("id").alias("_id"), F.lit("new").alias("x"))
    with pytest.raises(Exception, match="already exists"):
        write_collection(rows, ref(mongo_db.out), batch_size=1, overwrite=False)
    assert list(mongo_db.out.find()) == [{"_id": 2, "x": "kept"}]
    assert mongo_db.list_collection_names() == ["out"]


def test_empty_result_still_replaces(spark, mongo_db):
    mongo_db.out.insert_many([{"x": 0}])
    write_collection(spark.range(0).withColumnRenamed("id", "x"), ref(mongo_db.out), batch_size=2)
    assert mongo_db.out.count_documents({}) == 0


def test_a_write_that_fails_midway_leaves_the_target_as_it_was(spark, mongo_db, bank_collection):
    mongo_db.out.insert_many([{"keep": i} for i in range(5)])
    victim = bank_collection.find_one({}, sort=[("_id", -1)])["balance"]

    @F.udf("long")
    def explode_on(balance):
        if balance == victim:
            raise ValueError("deliberate failure in the middle of a write")
        return balance

    df = read_collection(spark, ref(bank_collection), partitions=4, partition_mb=1, split_scans=True)
    with pytest.raises(Exception, match="deliberate failure"):
        write_collection(df.select(explode_on("balance").alias("b")), ref(mongo_db.out), batch_size=100)
    assert sorted(d["keep"] for d in mongo_db.out.find()) == list(range(5))
    assert mongo_db.list_collection_names() == ["out"]  # the temporary collection is gone


def _check_encoding(spark, collection, parser):
    df = read_collection(spark, ref(collection), partitions=4, partition_mb=1)
    features, label, error = feature_columns(parser, df.schema)
    rows = df.select("_id", features.alias("f"), label.alias("l"), error.alias("e")).collect()
    documents = {str(d["_id"]): d for d in collection.find()}
    assert len(rows) == len(documents)
    mismatches, errors = [], 0
    for row in rows:
        try:
            expected = training_pair(parser, documents[row["_id"]])
        except RecordError as exc:
            errors += 1
            if row["e"] != exc.reason_message:  # Spark counts rows by reason, never by value
                mismatches.append((row["_id"], row["e"], exc.reason_message))
            continue
        if row["e"] is not None or (list(row["f"]), row["l"]) != expected:
            mismatches.append((row["_id"], row["e"], expected))
    assert mismatches == []
    return errors


def test_spark_encoding_equals_encode_one_on_the_whole_bank_data(spark, bank_collection):
    inferred = DataParser(schema_from_documents(bank_collection.find(), "y"))
    assert _check_encoding(spark, bank_collection, inferred) == 0
    shipped = DataParser(json.loads((ROOT / "job.json").read_text())["schema"])
    # The shared file holds two rows whose job is not a UCI category: both forms must reject them.
    assert _check_encoding(spark, bank_collection, shipped) == 2


def test_spark_encoding_reports_bad_rows_like_encode_one(spark, mongo_db):
    mongo_db.odd.insert_many(
        [
            {"n": 1, "s": "2.5", "c": "a", "y": "yes"},
            {"n": 2, "s": "x", "c": "a", "y": "no"},
            {"n": 3, "s": "nan", "c": "a", "y": "no"},
            {"n": 4, "s": "1", "c": "zzz", "y": "no"},
            {"n": 5, "s": "1", "c": "b", "y": "perhaps"},
            {"n": 6, "c": "b", "y": "no"},
            {"n": 7, "s": None, "c": "b", "y": "no"},
            {"n": 8, "s": "-Infinity", "c": "b", "y": "no"},
            {"n": 9, "s": "1" * 101, "c": "b", "y": "no"},
        ]
    )
    parser = DataParser(
        {
            "label": {"key": "y", "values": {"no": 0, "yes": 1}},
            "features": [{"key": "n"}, {"key": "s"}, {"key": "c", "values": {"a": 0, "b": 1}}],
        }
    )
    assert _check_encoding(spark, mongo_db.odd, parser) == 8
    absent = DataParser({"label": {"key": "nope"}, "features": [{"key": "n"}]})
    df = read_collection(spark, ref(mongo_db.odd), partitions=1)
    assert {r.e for r in df.select(feature_columns(absent, df.schema)[2].alias("e")).collect()} == {
        "field 'nope' is missing"
    }


def test_start_conf_is_the_classic_one(base_params):
    conf = start_conf(pick(SparkSettings, {**base_params, "spark_master": "spark://10.0.0.5:7077"}))
    assert conf.get("spark.app.name") == "prediction-service"
    assert conf.get("spark.master") == "spark://10.0.0.5:7077"
    assert start_conf(pick(SparkSettings, base_params)).get("spark.master") == "local[2]"
    assert sparkmongo.MongoDataSource.name() == "mongodb"


def test_a_whole_float_beyond_64_bits_reads_as_null_beside_missing_values():
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import LongType, StructField, StructType

    schema = StructType([StructField("x", LongType()), StructField("s", StructType([StructField("y", LongType())]))])
    fields = list(schema.fields)
    docs = [{"x": 1, "s": {"y": 2}}, {"x": 1e20, "s": {"y": -1e20}}, {}, {"x": 2.0**63, "s": {"y": 4.0}}]
    batch = sparkmongo._record_batch(
        docs, fields, [sparkmongo.converter(f.dataType) for f in fields], to_arrow_schema(schema), pa
    )
    assert batch.column("x").to_pylist() == [1, None, None, None]
    assert batch.column("s").to_pylist() == [{"y": 2}, {"y": None}, None, {"y": 4}]


RETRIED_WRITE = r"""
import json, sys
from pyspark import TaskContext
from predictionservice.config import load_parameters, pick
from predictionservice.mongotarget import CollectionRef
from predictionservice.sparksession import SparkSettings, get_spark, write_collection

uri, db = sys.argv[1], sys.argv[2]
params = load_parameters(environ={}, overrides={"spark_master": "local[2,2]", "spark_driver_memory": "1g",
                                                "spark_shuffle_partitions": 2})
spark = get_spark(pick(SparkSettings, params))
spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "50")
df = spark.range(0, 20000, numPartitions=2).selectExpr("concat('row-', id) AS id", "id * 2 AS twice")

def flaky(batches):
    ctx = TaskContext.get()
    for i, batch in enumerate(batches):
        if ctx.partitionId() == 0 and ctx.attemptNumber() == 0 and i == 150:
            raise RuntimeError("this attempt is lost after 7,500 rows went to the writer")
        yield batch

out = df.mapInPandas(flaky, df.schema)
write_collection(out, CollectionRef(uri, db, "retried"), batch_size=100, overwrite=True, key="id")
print(json.dumps({"ok": True}))
"""


def test_a_retried_write_task_writes_each_document_once(mongo_db, mongo_uri):
    """Issue 11, finding 15: a task attempt Spark retries inserts its batches again; with each
    document's _id its input's (write_collection's key), the second attempt's copies are known."""
    out = subprocess.run(
        [sys.executable, "-c", RETRIED_WRITE, mongo_uri, mongo_db.name],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "this attempt is lost" in out.stderr  # the first attempt did fail after writing
    docs = list(mongo_db.retried.find())
    assert len(docs) == 20000 and len({d["_id"] for d in docs}) == 20000
    assert sorted(d["twice"] for d in docs) == [2 * i for i in range(20000)]


def test_the_reader_plans_from_what_the_schema_sample_showed(mongo_db, mongo_uri):
    """Issue 16: a server may scan the whole collection to answer a count or a first find
    (SecantusDB does), so the planner takes the document size, and for a collection smaller than
    the sample its exact count, from schema inference's $sample (Spark hands the reader the data
    source instance that inferred the schema, pickled)."""
    import pickle

    import bson

    mongo_db.s.insert_many([{"v": i, "s": "x" * (i % 7)} for i in range(300)])
    options = {"uri": mongo_uri, "database": mongo_db.name, "collection": "s"}
    source = sparkmongo.MongoDataSource(options)
    schema = source.schema()
    sampled = pickle.loads(pickle.dumps(source)).sampled
    assert sampled.whole and sampled.docs == 300
    assert sampled.avg_bytes == pytest.approx(sum(len(bson.encode(d)) for d in mongo_db.s.find()) / 300)
    assert source.reader(schema)._size(None) == (300, sampled.avg_bytes)  # the server is not asked
    partial = sparkmongo.MongoDataSource({**options, "sampleSize": "50"})
    partial.schema()
    assert not partial.sampled.whole and partial.sampled.docs == 50
    assert partial.reader(schema)._size(mongo_db.s)[0] == 300  # the count is the server's
    projected = sparkmongo.MongoDataSource({**options, "fields": "v"})
    projected.schema()  # a projected read is sized by the projected documents it will read
    assert projected.sampled.whole and projected.sampled.avg_bytes == pytest.approx(
        sum(len(bson.encode(d)) for d in mongo_db.s.find({}, {"v": 1})) / 300
    )
    assert projected.reader(schema)._size(None) == (300, projected.sampled.avg_bytes)
    empty = sparkmongo.MongoDataSource({**options, "collection": "missing"})
    assert empty.schema().fields == [] and empty.sampled.docs == 0
    assert len(empty.reader(StructType([])).partitions()) == 1


def test_mongodb_gone_while_writing_is_named_in_the_error():
    """A MongoDB that stopped answering is named, with what happens to the output, not reported
    as a topology description (issue 25, section 4). Nothing listens on the port."""
    from predictionservice.tempcollections import temp_name

    uri = f"mongodb://127.0.0.1:{embedded.free_port()}/?serverSelectionTimeoutMS=300"
    writer = sparkmongo.MongoWriter({"uri": uri, "database": "d", "collection": "out"}, StructType(), True)
    with pymongo.MongoClient(uri) as client, pytest.raises(sparkmongo.MongoWriteError) as written:
        writer._insert(client.d[temp_name("__writing_", "out")], [{"_id": 1}], 0)
    assert str(written.value).startswith("MongoDB stopped answering while the output for d.out was written")
    assert "previous output is kept" in str(written.value) and "Topology" not in str(written.value)


def test_an_ignored_unknown_category_is_all_zeros_in_spark_as_online(spark, mongo_db):
    """A feature with "unknown": "ignore": a category the map lacks is a good row of zeros in the
    feature vector, the scoring slots and a linear margin, as DataParser encodes it (a boolean or a
    fraction too: a column of mixed kinds reads as text); a null is still a bad row."""
    from predictionservice.sparkfeatures import margin_column, vector_slots

    mongo_db.cities.insert_many(
        [
            {"n": 1, "c": "a", "y": "yes"},
            {"n": 2, "c": "zzz", "y": "no"},
            {"n": 3, "c": 7, "y": "no"},
            {"n": 4, "c": True, "y": "no"},
            {"n": 5, "c": 2.5, "y": "no"},
            {"n": 6, "c": None, "y": "no"},
        ]
    )
    parser = DataParser(
        {
            "label": {"key": "y", "values": {"no": 0, "yes": 1}},
            "features": [{"key": "n"}, {"key": "c", "values": {"a": 0, "b": 1}, "unknown": "ignore"}],
        }
    )
    assert _check_encoding(spark, mongo_db.cities, parser) == 1
    df = read_collection(spark, ref(mongo_db.cities), partitions=1)
    slots, slot_error = vector_slots(parser, df.schema)
    margin, error = margin_column(parser, df.schema, [0.5, -2.0, 3.0], 0.25)
    rows = df.select("n", slots.alias("s"), slot_error.alias("se"), margin.alias("m"), error.alias("e")).collect()
    scored = {r["n"]: (r["s"], r["m"]) for r in rows if r["e"] is None and r["se"] is None}
    zeros = {n: ([float(n), 0.0, 0.0], 0.5 * n + 0.25) for n in (2, 3, 4, 5)}
    assert scored == {1: ([1.0, 1.0, 0.0], 0.5 - 2.0 + 0.25), **zeros}
