"""A running job's heartbeat (moved out of worker.py, which keeps the job's life cycle): its
worker process says it is alive and looks for a cancel while the job runs; whether another live
worker process runs a job; and the cancelling of a job's Spark work in this process."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from predictionservice.defaults import JOB_CANCEL_POLL
from predictionservice.jobstore import JobStore

log = logging.getLogger("prediction_service")


def cancel_spark_group(job_id: str) -> None:
    """Cancel what Spark runs for the job in this process, when a session runs (best effort:
    its JVM may be gone already)."""
    session = sys.modules.get("predictionservice.sparksession")
    if session is None:
        return
    try:
        session.cancel_group(job_id)
    except Exception:
        log.info("job %s: its Spark job group could not be cancelled", job_id, exc_info=True)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def running_elsewhere(jobs: JobStore, record: dict[str, Any], timeout: float) -> bool:
    """Another worker process is alive and running this job: its heartbeat is fresh and, when it
    runs on this machine, its process exists (a pool process that just died left a fresh beat).
    timeout is the job_heartbeat_timeout setting."""
    beat = jobs.beat_of(record)
    if beat is None or beat[1] >= timeout:
        return False
    host, _, pid = beat[0].rpartition(":")
    if beat[0] == owner_id():
        return False
    if host == socket.gethostname():
        return pid.isdigit() and Path(f"/proc/{pid}").exists()
    return True


class Heartbeat:
    """While a job runs, its worker process says so every interval seconds (best effort: a
    Redis blip skips a beat; the reaper waits job_heartbeat_timeout before it acts), and looks
    every JOB_CANCEL_POLL seconds whether the job was cancelled (DELETE /jobs/<id>): then it
    cancels the job's Spark job group, again at each look, so work the job starts later stops too."""

    def __init__(self, jobs: JobStore, job_id: str, interval: float):
        self.jobs, self.job_id, self.interval = jobs, job_id, interval
        self.cancelled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        owner, due = owner_id(), 0.0
        while True:
            if time.monotonic() >= due:
                due = time.monotonic() + self.interval
                try:
                    self.jobs.heartbeat(self.job_id, owner)
                except Exception:
                    log.warning("job %s: a heartbeat did not reach Redis", self.job_id, exc_info=True)
            self._look_for_cancel()
            if self._stop.wait(min(self.interval, JOB_CANCEL_POLL)):
                return

    def _look_for_cancel(self) -> None:
        try:
            self.cancelled = self.cancelled or self.jobs.cancelled(self.job_id)
        except Exception:
            return  # Redis away: the heartbeat says so
        if self.cancelled:
            cancel_spark_group(self.job_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
