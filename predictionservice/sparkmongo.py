"""A MongoDB source and sink for Spark, on Spark's Python Data Source API.

The official connector comes from Maven; this one is pure Python and needs only pymongo and
pyarrow on the executors, and of the project only tempcollections.py (both files are shipped to
executors with ``SparkContext.addPyFile``). It works the same on ``local[N]`` and on a
multi-process cluster:

* **read** - the collection is split into at most ``numPartitions`` ranges of ``_id`` of about
  ``partitionSizeMB`` each, whose bounds come from a server-side ``$sample`` (the connector's
  SamplePartitioner idea); the last range also takes every ``_id`` of another BSON type, so
  nothing is missed. Each executor reads its own range with pymongo, projecting the requested
  fields, and hands Spark Arrow record batches. The driver never sees the data.
* **write** - every executor inserts its rows in batches into one temporary collection; the
  driver's commit then renames it over the target (``dropTarget``: an atomic replace) or merges it
  into the target for ``mode("append")``; an abort drops it. A failed job leaves the target as it
  was.

Options: ``uri``, ``database``, ``collection``, ``numPartitions`` (read: at most this many,
default 4), ``partitionSizeMB`` (read: about this much data each, default 64), ``fields``
(read, comma-separated projection; default all), ``sampleSize`` (schema inference, default 1000),
``splitScans`` (read: ``true`` splits the collection even on a server whose plan for an ``_id``
range is a collection scan; default ``false``: there one partition reads it once, where n would read
it n times), ``batchSize`` (write, default 1000).

    spark.dataSource.register(MongoDataSource)
    df = spark.read.format("mongodb").option("uri", u).option("database", "datasets") \
        .option("collection", "bank").load()
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    NullType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from predictionservice.tempcollections import RECOVER_WAIT, WRITING_PREFIX, marked, publish, temp_name, tidy

FORMAT = "mongodb"
ARROW_CHUNK = 8192
ABORT_WATCH = 5.0  # seconds an abort keeps dropping what late tasks of the failed job recreate
SAMPLES_PER_PARTITION = 20


def _client(uri: str) -> Any:
    import pymongo

    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000)


def _options(options: Any) -> tuple[str, str, str]:
    try:
        return options["uri"], options["database"], options["collection"]
    except KeyError as exc:
        raise ValueError(f"the {FORMAT} data source needs the option {exc.args[0]!r}") from None


# ----------------------------------------------------------------------------- schema inference


def infer_type(value: Any) -> DataType:
    """The Spark type of one BSON value; ids and exotic types become strings."""
    if value is None:
        return NullType()
    if isinstance(value, bool):
        return BooleanType()
    if isinstance(value, int):
        return LongType()
    if isinstance(value, float):
        return DoubleType()
    if isinstance(value, str):
        return StringType()
    import datetime

    if isinstance(value, datetime.datetime):
        return TimestampType()
    if isinstance(value, dict):
        return StructType([StructField(k, infer_type(v), True) for k, v in value.items()])
    if isinstance(value, list):
        element: DataType = NullType()
        for item in value:
            element = merge_types(element, infer_type(item))
        return ArrayType(StringType() if isinstance(element, NullType) else element, True)
    if isinstance(value, bytes):
        return BinaryType()
    return StringType()  # ObjectId, Decimal128, Regex, ...: their string form


def merge_types(a: DataType, b: DataType) -> DataType:
    if isinstance(a, NullType):
        return b
    if isinstance(b, NullType) or a == b:
        return a
    if {type(a), type(b)} == {LongType, DoubleType}:
        return DoubleType()
    if isinstance(a, StructType) and isinstance(b, StructType):
        fields = {f.name: f.dataType for f in a.fields}
        for f in b.fields:
            fields[f.name] = merge_types(fields[f.name], f.dataType) if f.name in fields else f.dataType
        return StructType([StructField(k, v, True) for k, v in fields.items()])
    if isinstance(a, ArrayType) and isinstance(b, ArrayType):
        return ArrayType(merge_types(a.elementType, b.elementType), True)
    return StringType()


def spark_schema_of(docs: Sequence[dict[str, Any]], fields: Sequence[str] | None = None) -> StructType:
    """The Spark schema (StructType) of sampled documents: each field's types merged across them,
    only ``fields`` when given; what a read is planned with when it names no schema."""
    merged: dict[str, DataType] = {name: NullType() for name in fields or ()}
    for doc in docs:
        for key, value in doc.items():
            if fields and key not in merged:
                continue
            merged[key] = merge_types(merged.get(key, NullType()), infer_type(value))
    # A field never seen with a value is kept as a nullable string: callers can still select it.
    return StructType([StructField(k, StringType() if isinstance(t, NullType) else t, True) for k, t in merged.items()])


# ------------------------------------------------------------------------------ value conversion


def converter(data_type: DataType):
    """A function from a BSON value to what Arrow expects for data_type (None when it can't)."""
    if isinstance(data_type, LongType):

        def to_long(v: Any) -> Any:
            if isinstance(v, bool):
                return None
            if isinstance(v, int):
                return v
            if isinstance(v, float) and v.is_integer() and -(2**63) <= v < 2**63:
                return int(v)
            return None  # pymongo's ints are 64-bit already: only a float can be out of range

        return to_long
    if isinstance(data_type, DoubleType):
        return lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if isinstance(data_type, BooleanType):
        return lambda v: v if isinstance(v, bool) else None
    if isinstance(data_type, StringType):

        def to_string(v: Any) -> Any:
            if v is None or isinstance(v, str):
                return v
            if isinstance(v, (dict, list)):
                from bson import json_util

                return json_util.dumps(v)
            return str(v)

        return to_string
    if isinstance(data_type, StructType):
        parts = [(f.name, converter(f.dataType)) for f in data_type.fields]
        return lambda v: {name: conv(v.get(name)) for name, conv in parts} if isinstance(v, dict) else None
    if isinstance(data_type, ArrayType):
        conv = converter(data_type.elementType)
        return lambda v: [conv(x) for x in v] if isinstance(v, list) else None
    if isinstance(data_type, TimestampType):
        import datetime

        return lambda v: v if isinstance(v, datetime.datetime) else None
    if isinstance(data_type, BinaryType):
        return lambda v: bytes(v) if isinstance(v, bytes) else None
    return lambda v: None


# ---------------------------------------------------------------------------------- the source


class MongoDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return FORMAT

    def _fields(self) -> list[str] | None:
        fields = self.options.get("fields")
        return [f.strip() for f in fields.split(",") if f.strip()] if fields else None

    def schema(self) -> StructType:
        import bson

        uri, db, coll = _options(self.options)
        size = int(self.options.get("sampleSize", 1000))
        fields = self._fields()
        with _client(uri) as client:
            collection = client[db][coll]
            projection = {f: 1 for f in fields} if fields else None
            pipeline: list[dict[str, Any]] = [{"$sample": {"size": size}}]
            if projection:
                pipeline.append({"$project": projection})
            docs = list(collection.aggregate(pipeline))
        # Spark hands the reader this very instance (pickled after schema()), so the planner need
        # not ask the server again what the sample showed: fewer documents than asked for is the
        # whole collection, counted exactly; their size (projected, as they will be read) sizes
        # the partitions. A server may scan the collection for every find or count.
        self.sampled = Sample(len(docs), size, sum(len(bson.encode(d)) for d in docs) / len(docs) if docs else 0.0)
        return spark_schema_of(docs, fields)

    def reader(self, schema: StructType) -> MongoReader:
        return MongoReader(self.options, schema, getattr(self, "sampled", None))

    def writer(self, schema: StructType, overwrite: bool) -> MongoWriter:
        return MongoWriter(self.options, schema, overwrite)


@dataclass(frozen=True)
class Sample:
    """What schema inference's $sample showed: documents returned of those asked for, and their
    average BSON size."""

    docs: int
    asked: int
    avg_bytes: float

    @property
    def whole(self) -> bool:
        """Fewer documents than asked for: the sample is the whole collection."""
        return self.docs < self.asked


@dataclass
class IdRange(InputPartition):
    """Documents whose _id is in [low, high) (None: unbounded); with other_than, also those whose
    _id is of any BSON type but that one."""

    low: Any = None
    high: Any = None
    other_than: str | None = None

    def query(self) -> dict[str, Any]:
        bounds: dict[str, Any] = {}
        if self.low is not None:
            bounds["$gte"] = self.low
        if self.high is not None:
            bounds["$lt"] = self.high
        in_range = {"_id": bounds} if bounds else {}
        if self.other_than is None or not in_range:
            return in_range
        return {"$or": [in_range, {"_id": {"$not": {"$type": self.other_than}}}]}


def _id_kind(value: Any) -> str | None:
    """The $type alias that brackets a range of such _ids; None for kinds not partitioned."""
    from bson import ObjectId

    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return None


def ranges_scan(collection: Any) -> bool:
    """Whether the server reads the whole collection to answer an ``_id`` range (the leaf of its
    plan is a COLLSCAN), so that
    n partitions would read it n times. Asked of the query planner, which runs nothing; a server
    that cannot say is taken to use its ``_id`` index, as mongod does."""
    from bson import MinKey
    from pymongo.errors import PyMongoError

    try:
        explained = collection.database.command(
            "explain", {"find": collection.name, "filter": {"_id": {"$gte": MinKey()}}}, verbosity="queryPlanner"
        )
    except PyMongoError:
        return False
    return plan_leaf(explained.get("queryPlanner", {}).get("winningPlan", {})) == "COLLSCAN"


def plan_leaf(plan: dict[str, Any]) -> str | None:
    """The stage a winning plan starts from (mongod's slot-based engine nests it in queryPlan)."""
    stage = plan.get("queryPlan", plan)
    while isinstance(stage.get("inputStage"), dict):
        stage = stage["inputStage"]
    return stage.get("stage")


class MongoReader(DataSourceReader):
    def __init__(self, options: Any, schema: StructType, sampled: Sample | None = None):
        self.uri, self.db, self.collection = _options(options)
        self.schema = schema
        self.sampled = sampled
        self.num_partitions = max(1, int(options.get("numPartitions", 4)))
        self.partition_mb = float(options.get("partitionSizeMB", 64))
        # Project only when asked for some fields: reading "all" needs no projection.
        self.projected = bool(options.get("fields"))
        self.split_scans = str(options.get("splitScans", "false")).lower() == "true"
        self.batch_size = int(options.get("readBatchSize", 5000))

    def partitions(self) -> Sequence[InputPartition]:
        """At most numPartitions ranges of about partitionSizeMB each (the official connector's
        default size is 64 MB: a small collection is one partition, read by one query)."""
        if self.num_partitions == 1 or (self.sampled is not None and self.sampled.whole and self.sampled.docs < 2):
            return [IdRange()]  # nothing to plan: no question to the server
        with _client(self.uri) as client:
            collection = client[self.db][self.collection]
            count, avg = self._size(collection)
            wanted = min(self.num_partitions, math.ceil(count * avg / (self.partition_mb * 2**20)))
            if wanted <= 1 or count < 2 * wanted or (not self.split_scans and ranges_scan(collection)):
                return [IdRange()]
            size = min(count, wanted * SAMPLES_PER_PARTITION)
            ids = [d["_id"] for d in collection.aggregate([{"$sample": {"size": size}}, {"$project": {"_id": 1}}])]
        kinds = Counter(_id_kind(i) for i in ids)
        kind = kinds.most_common(1)[0][0]
        if kind is None:
            return [IdRange()]  # unusual ids: one partition reads everything
        ids = sorted({i for i in ids if _id_kind(i) == kind})
        step = len(ids) / wanted
        bounds = sorted({ids[int(step * k)] for k in range(1, wanted)})
        edges = [None, *bounds, None]
        # A range only matches one BSON type (numbers count as one): the last partition also
        # takes every _id of another type, so a mixed collection is still read whole.
        return [IdRange(lo, hi, other_than=kind if hi is None else None) for lo, hi in itertools.pairwise(edges)]

    def _size(self, collection: Any) -> tuple[int, float]:
        """Documents in the collection and their average BSON size, from schema inference's
        sample when there was one (a server may scan the collection to answer a count or a
        first find), else from the server."""
        import bson

        sampled = self.sampled
        if sampled is not None and sampled.whole:
            return sampled.docs, sampled.avg_bytes
        count = collection.estimated_document_count()
        if sampled is not None:
            return count, sampled.avg_bytes
        head = list(collection.find({}, limit=100))
        return count, sum(len(bson.encode(d)) for d in head) / len(head) if head else 0.0

    def read(self, partition: InputPartition) -> Iterator[Any]:
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema

        query = partition.query() if isinstance(partition, IdRange) else {}
        fields = list(self.schema.fields)
        converters = [converter(f.dataType) for f in fields]
        arrow_schema = to_arrow_schema(self.schema, timezone="UTC")
        projection: dict[str, int] | None = None
        if self.projected:
            projection = {f.name: 1 for f in fields}
            projection.setdefault("_id", 0)
        with _client(self.uri) as client:
            cursor = client[self.db][self.collection].find(query, projection, batch_size=self.batch_size)
            chunk: list[dict[str, Any]] = []
            for doc in cursor:
                chunk.append(doc)
                if len(chunk) >= ARROW_CHUNK:
                    yield _record_batch(chunk, fields, converters, arrow_schema, pa)
                    chunk = []
            if chunk:
                yield _record_batch(chunk, fields, converters, arrow_schema, pa)


_PLAIN = {"bigint": (int,), "double": (float, int), "string": (str,), "boolean": (bool,)}


def _record_batch(
    docs: list[dict[str, Any]], fields: list[StructField], converters: list[Any], schema: Any, pa: Any
) -> Any:
    arrays = []
    for field, conv, arrow_field in zip(fields, converters, schema, strict=False):
        values = [doc.get(field.name) for doc in docs]
        plain = _PLAIN.get(field.dataType.simpleString())
        # Columns of exactly the declared Python types go to Arrow as they are (in C); anything
        # else (ids, stray types, big numbers) goes through the converter, value by value.
        if plain is None or not all(v is None or type(v) in plain for v in values):
            values = [conv(v) for v in values]
        arrays.append(pa.array(values, type=arrow_field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# ------------------------------------------------------------------------------------ the sink


class MongoWriteError(RuntimeError):
    """A write refused by MongoDB, named without the (possibly huge) document."""


@dataclass
class Written(WriterCommitMessage):
    rows: int


DUPLICATE_KEY = 11000


class MongoWriter(DataSourceArrowWriter):
    def __init__(self, options: Any, schema: StructType, overwrite: bool):
        self.uri, self.db, self.collection = _options(options)
        self.overwrite = overwrite
        self.batch_size = max(1, int(options.get("batchSize", 1000)))
        self.temp = temp_name(WRITING_PREFIX, self.collection)

    def write(self, iterator: Iterator[Any]) -> Written:
        """Insert the task's rows in batches, one batch in flight while the next is converted:
        the server stores batch k while this thread turns Arrow into documents for batch k+1."""
        from concurrent.futures import ThreadPoolExecutor, wait

        rows = 0
        with _client(self.uri) as client, ThreadPoolExecutor(max_workers=1) as pool:
            target = client[self.db][self.temp]
            inflight = None
            try:
                for docs in self._batches(iterator):
                    if inflight is not None:
                        inflight.result()  # a refused document stops the task here
                    inflight = pool.submit(self._insert, target, docs, rows)
                    rows += len(docs)
                if inflight is not None:
                    inflight.result()
            except BaseException:
                if inflight is not None:
                    wait([inflight])  # no insert outlives the task (an abort drops the collection)
                raise
        return Written(rows)

    def _batches(self, iterator: Iterator[Any]) -> Iterator[list[dict[str, Any]]]:
        pending: list[dict[str, Any]] = []
        for batch in iterator:
            pending.extend(batch.to_pylist(maps_as_pydicts="strict"))  # a map is a sub-document
            while len(pending) >= self.batch_size:
                yield pending[: self.batch_size]
                del pending[: self.batch_size]
        if pending:
            yield pending

    def _insert(self, target: Any, docs: list[dict[str, Any]], offset: int) -> None:
        import pymongo.errors

        try:
            target.insert_many(docs, ordered=False)
        except pymongo.errors.ConnectionFailure as exc:
            raise MongoWriteError(
                f"MongoDB stopped answering while the output for {self.db}.{self.collection} was written "
                f"({type(exc).__name__}); the previous output is kept: run the job again once MongoDB is back"
            ) from None
        except pymongo.errors.BulkWriteError as exc:
            # A retried task attempt writes its rows again: a document that carries its own _id
            # and is already there was written by an earlier attempt, so the write is idempotent.
            errors = [
                e
                for e in exc.details.get("writeErrors") or []
                if not (e.get("code") == DUPLICATE_KEY and "_id" in docs[e["index"]])
            ]
            if not errors:
                return
            first = errors[0]
            where = offset + int(first.get("index", 0))
            # The default message carries the whole refused document: keep what a person needs.
            raise MongoWriteError(
                f"MongoDB refused output document {where} of this partition for "
                f"{self.db}.{self.collection}: {first.get('errmsg', 'write error')} (code {first.get('code')})"
            ) from None

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        import pymongo.errors

        with _client(self.uri) as client:
            db = client[self.db]
            try:
                publish(db, self.temp, self.collection, replace=self.overwrite)  # an empty result replaces too
            except pymongo.errors.ConnectionFailure as exc:
                raise MongoWriteError(
                    f"MongoDB stopped answering while the output was put in place in {self.db}.{self.collection} "
                    f"({type(exc).__name__}): the previous output stays or, if the new one was complete, it is put "
                    "in place once MongoDB is back (at the worker's next start or next write to that database)"
                ) from None
            tidy(db, WRITING_PREFIX)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        import pymongo.errors

        with _client(self.uri) as client:
            db = client[self.db]
            away_until = time.monotonic() + RECOVER_WAIT
            while True:  # the write may have failed because MongoDB went away: wait for it a while
                try:
                    if marked(db, self.temp):
                        return  # a commit broke off after marking it complete: its recovery needs it
                    db.drop_collection(self.temp)
                    break
                except pymongo.errors.PyMongoError:
                    if time.monotonic() > away_until:
                        raise
                    time.sleep(1.0)
            # Spark aborts as soon as one task fails; tasks still finishing an insert would create
            # the temporary collection again, so keep dropping it for a little while.
            deadline = time.monotonic() + ABORT_WATCH
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if db.list_collection_names(filter={"name": self.temp}):
                    db.drop_collection(self.temp)
