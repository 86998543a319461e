"""What bounds the prediction log's writer: its own Python work (building and BSON-encoding each
document, batching) or the MongoDB server's insert throughput. One SecantusDB (the stand-in for
mongod the other benchmarks use), one run, three measures on the log's document shape (a bank
record, a classifier's answer, one document a request):

* **insert**: ``insert_many(ordered=False)`` of documents encoded beforehand, at --batch-sizes,
  into a collection with the log's indexes: what the server takes, with no writer in the way,
  and the server process's CPU a document; then at the writer's batch size with only ``_id``'s
  index, and with each secondary index alone (which of them the server pays for: the log's two,
  and the one on name, version and time it no longer makes);
* **writer**: a real ``PredictionLog`` fed --requests single-record requests as fast as its queue
  takes them (nothing dropped): documents written a second, and the writer thread's own CPU a
  document (its thread clock, so the insert's wait on the socket is not counted);
* **before / after**: with ``--before <rev>``, the writer arm runs in two child processes, one
  importing predictionservice from that git revision, one from the working tree, alternating for
  --rounds, so both see the same server and machine.

    .venv/bin/python bench/bench_logwriter.py [--quick] [--requests N] [--batch-sizes 100,500,2000]
        [--before REV] [--rounds N]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

import bson
import harness
from bson.raw_bson import RawBSONDocument
from harness import ROOT, Bench, arg_parser, bank_documents, parse_args
from logwriter_child import ANSWER, MODEL

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def records(bench: Bench, count: int) -> list[dict[str, Any]]:
    docs = bank_documents(bench)
    return [{k: v for k, v in docs[i % len(docs)].items() if k != "y"} for i in range(count)]


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def secantus_pid() -> int:
    for pid, command in harness.own_children().items():
        if "secantus" in command:
            return pid
    raise RuntimeError("no SecantusDB child process")


# Secondary indexes one by one, to see which the server's insert pays for: the log's two
# (predictionlog.ensure_indexes) and the one on name, version and time that it made until no
# read of the service was found to use it.
ONE_INDEX = {
    "request_id": [("request_id", 1)],
    "name_version_time": [("model.name", 1), ("model.version", 1), ("time", 1)],
    "key_time": [("model.model_key", 1), ("time", 1)],
}


def insert_arm(bench: Bench, rows: list[dict[str, Any]], batch: int, indexes: str = "log") -> dict[str, float]:
    """insert_many of pre-encoded log documents at one batch size, into a fresh collection with
    the log's indexes ("log"), only _id's ("id"), one of ONE_INDEX, or the log's and one more
    ("log+<one of ONE_INDEX>": what that index would add)."""
    from predictionservice.predictionlog import ensure_indexes

    collection = bench.collection(f"bench.insert_{batch}_{uuid.uuid4().hex[:6]}")
    if indexes.startswith("log"):
        ensure_indexes(collection, 0)
    extra = indexes.removeprefix("log+")
    if extra in ONE_INDEX:
        collection.create_index(ONE_INDEX[extra])
    when = time.time()
    raw = [RawBSONDocument(bson.encode(document)) for document in log_documents(rows, when)]
    pid = secantus_pid()
    cpu, started = server_cpu_seconds(pid), time.perf_counter()
    for start in range(0, len(raw), batch):
        collection.insert_many(raw[start : start + batch], ordered=False)
    seconds = time.perf_counter() - started
    server_cpu = server_cpu_seconds(pid) - cpu
    if collection.estimated_document_count() != len(raw):
        raise RuntimeError("not every document was inserted")
    collection.drop()
    return {"docs_per_s": len(raw) / seconds, "server_cpu_us_per_doc": server_cpu / len(raw) * 1e6}


def log_documents(rows: list[dict[str, Any]], when: float) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(when, UTC)
    return [
        {
            "_id": bson.ObjectId(),
            "request_id": f"r{i}",
            "time": at,
            "model": MODEL,
            "variant": "answer",
            "record": row,
            "answer": ANSWER,
            "latency_ms": 1.5,
        }
        for i, row in enumerate(rows)
    ]


def source_tree(bench: Bench, rev: str) -> Path:
    """predictionservice/ as it was at rev, in a directory of its own (first on a child's path)."""
    target = bench.dir / f"rev-{rev.replace('/', '_')}"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "predictionservice"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def run_writer(bench: Bench, tree: Path, rows: list[dict[str, Any]], args: Any, batch: int) -> dict[str, float]:
    namespace = f"bench.writer_{uuid.uuid4().hex[:8]}"
    path = os.pathsep.join([str(tree), str(ROOT / "bench")])
    code = (
        "import json, logwriter_child as c; "
        f"print(json.dumps(c.writer_child({bench.mongo_uri!r}, {namespace!r}, {args.requests}, {batch})))"
    )
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(rows[:2000], default=str),
        text=True,
        capture_output=True,
        env=env,
        cwd=bench.dir,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"writer child failed: {done.stderr[-2000:]}")
    bench.collection(namespace).drop()
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(bench: Bench, prefix: str, runs: list[dict[str, float]], cpu: str, whose: str) -> None:
    """An arm's figures: the median documents a second (each run's shown) and CPU a document."""
    each = [round(r["docs_per_s"]) for r in runs]
    bench.figure(
        f"{prefix}_docs_per_s", statistics.median(r["docs_per_s"] for r in runs), "docs/s", f"median of {each}"
    )
    bench.figure(f"{prefix}_cpu_us_per_doc", statistics.median(r[cpu] for r in runs), "us", whose)


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, help="documents of each arm (default 50000; --quick: 5000)")
    parser.add_argument("--batch-sizes", help="insert arm's batch sizes (default 100,500,2000)")
    parser.add_argument("--writer-batch", type=int, help="the writer arm's prediction_log_batch_size (default 500)")
    parser.add_argument("--before", help="a git revision: its predictionservice/ as the writer arm's 'before'")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3; --quick: 1)")
    normal = {"requests": 50_000, "batch_sizes": "100,500,2000", "writer_batch": 500, "rounds": 3}
    args = parse_args(parser, normal, {"requests": 5_000, "rounds": 1}, argv)
    with Bench("logwriter", args) as bench:
        bench.start_stores()
        rows = records(bench, args.requests)
        bench.section(f"insert_many into SecantusDB, {args.requests:,} pre-encoded log documents")
        sizes = [int(x) for x in args.batch_sizes.split(",")]
        cases = {f"batch_{size}": (size, "log") for size in sizes}
        for only in ("id", *ONE_INDEX):
            cases[f"batch_{args.writer_batch}_{only}_index_only"] = (args.writer_batch, only)
        cases[f"batch_{args.writer_batch}_with_name_version_time"] = (args.writer_batch, "log+name_version_time")
        inserts: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
        for _ in range(args.rounds):
            for case, (size, indexes) in cases.items():
                inserts[case].append(insert_arm(bench, rows, size, indexes))
        for case, runs in inserts.items():
            medians(bench, f"insert_{case}", runs, "server_cpu_us_per_doc", "SecantusDB's CPU")
        logs, more = (
            inserts.get(f"batch_{args.writer_batch}"),
            inserts[f"batch_{args.writer_batch}_with_name_version_time"],
        )
        if logs is not None:  # the index ensure_indexes no longer makes: what dropping it saves the server
            cpu = "server_cpu_us_per_doc"
            bench.paired_ratio(
                "server CPU a document, the log's / with name_version_time",
                [r[cpu] for r in logs],
                [r[cpu] for r in more],
            )
        arms = {"after": ROOT}
        if args.before:
            arms = {"before": source_tree(bench, args.before), **arms}
        bench.section(f"PredictionLog writer, {args.requests:,} requests, batch {args.writer_batch}: {list(arms)}")
        writer: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
        for round_ in range(args.rounds):
            for name, tree in arms.items():
                writer[name].append(run_writer(bench, tree, rows, args, args.writer_batch))
                bench.say(f"round {round_ + 1} {name}: {writer[name][-1]}")
        for name, runs in writer.items():
            medians(bench, f"writer_{name}", runs, "writer_cpu_us_per_doc", "the writer thread's CPU")
            bench.figure(f"writer_{name}_dropped", int(sum(r["dropped"] for r in runs)), "documents")
        if args.before:
            bench.ratio("writer after / before docs per s", "writer_after_docs_per_s", "writer_before_docs_per_s")
            bench.ratio("writer CPU after / before", "writer_after_cpu_us_per_doc", "writer_before_cpu_us_per_doc")
        bench.result["runs"] = {"insert": inserts, "writer": writer}
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
