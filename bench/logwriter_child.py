"""bench_logwriter.py's writer arm, run in a child process whose path puts one revision's
predictionservice/ first: it imports nothing else of the project (not the harness, whose imports
would pull the working tree's modules into an older revision's package)."""

from __future__ import annotations

import json
import sys
import threading
import time

ANSWER = {"prediction": 1, "label": "yes", "probability": 0.87}  # /predict/'s answer, as logged
MODEL = {"name": None, "version": None, "model_key": "0123456789abcdef0123456789abcdef"}


def writer_child(uri: str, namespace: str, count: int, batch: int) -> dict[str, float]:
    """In a child process: a PredictionLog (whichever predictionservice is on the path) fed count
    requests without a drop; its documents a second and its writer thread's CPU a document."""
    from predictionservice.predictionlog import LogSettings, PredictionLog

    queue_size = 10_000
    settings = LogSettings(
        uri, prediction_log_collection=namespace, prediction_log_queue_size=queue_size, prediction_log_batch_size=batch
    )
    log = PredictionLog(settings)
    rows = json.loads(sys.stdin.read())
    log.log("warm", MODEL, [rows[0]], [ANSWER], 1.0, single=True)  # the thread started, indexes made
    if not log.flush(60):
        raise RuntimeError("the warm-up was not written")
    writer = next(t for t in threading.enumerate() if t.name == "prediction-log")
    clock = time.pthread_getcpuclockid(writer.ident)
    cpu, started = time.clock_gettime(clock), time.perf_counter()
    for i in range(count):
        while log.depth() >= queue_size - 1:  # wait for room: this arm measures the writer, not drops
            time.sleep(0.0005)
        log.log(f"r{i}", MODEL, [rows[i % len(rows)]], [ANSWER], 1.5, single=True)
    if not log.flush(600):
        raise RuntimeError("not written within 600 s")
    seconds = time.perf_counter() - started
    writer_cpu = time.clock_gettime(clock) - cpu
    dropped = sum(log.dropped.values())
    log.stop()
    return {"docs_per_s": count / seconds, "writer_cpu_us_per_doc": writer_cpu / count * 1e6, "dropped": dropped}
