"""The reaper (moved out of worker.py, which starts it): in each worker's main process, it re-queues
a running job whose worker process stopped beating (its own unacknowledged message, put back
through kombu's restore by delivery tag) or ends it FAILED when its message is gone. It drives
the broker's internals, so it stands apart from the library, which imports no queue framework."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from celery import Celery

from predictionservice.jobstore import FAILED, FINAL, JobStore
from predictionservice.redisclient import connect

log = logging.getLogger("prediction_service")


def reap(app: Celery, jobs: JobStore, params: dict[str, Any], unreachable_at: float = 0.0) -> list[str]:
    """Re-queue each running job whose worker stopped beating: its own unacknowledged message is
    put back on the queue (the whole job document, as submitted), for any worker to take; a job
    whose message is gone ends FAILED, naming a Redis restart when one may have lost it. The ids
    it acted on.

    Silence only counts while Redis could hear: within job_heartbeat_timeout of Redis starting
    (a restart) or of unreachable_at (the last time this reaper could not reach it), a missed
    beat is the outage's, not a lost worker's, and nothing is done."""
    timeout = float(params["job_heartbeat_timeout"])
    uptime = jobs.redis_uptime()
    if min(uptime, time.time() - unreachable_at) < timeout:
        return []
    acted = []
    for job_id in jobs.stopped_beating(timeout):
        if not jobs.claim_reaping(job_id, timeout):
            continue  # another worker's reaper has it
        record = jobs.get(job_id)
        jobs.forget_beat(job_id)  # the next attempt beats again
        if record is None or record["status"] in FINAL:
            continue
        if requeue(app, job_id):
            log.warning("job %s: its worker stopped beating; re-queued for another worker", job_id)
        else:
            jobs.update(job_id, FAILED, lost_message(record, uptime))
        acted.append(job_id)
    return acted


def lost_message(record: dict[str, Any], redis_uptime: float) -> str:
    """Why a job whose worker was lost cannot be re-queued: its message is gone, after a Redis
    restart (a broker outage) when Redis started after the job was submitted."""
    if time.time() - redis_uptime > float(record.get("created_at", 0.0)):
        return (
            f"the worker running this job was lost, and its queued message with it: Redis (the broker) "
            f"restarted {redis_uptime:.0f} s ago, after the job was submitted, and did not keep it; submit it again"
        )
    return "the worker running this job was lost and its queued message is gone; submit it again"


def requeue(app: Celery, job_id: str) -> bool:
    """Put the job's unacknowledged message back on its queue (kombu's own restore, by delivery
    tag); False when no unacknowledged message carries that task id."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        client = channel.client
        for tag, raw in client.hscan_iter(channel.unacked_key):
            payload = json.loads(raw)[0]
            if payload.get("headers", {}).get("id") == job_id:
                channel.qos.restore_by_tag(tag, client)
                return True
    return False


def start_reaper(app: Celery) -> threading.Thread:
    """The reaper runs in each worker's main process: it outlives any pool process."""
    params = app.conf["service_params"]
    jobs = JobStore(
        connect(params["redis_url"], timeout=params["redis_timeout"]), params["job_ttl"], params["redis_key_prefix"]
    )

    def loop() -> None:
        unreachable_at = 0.0
        while True:
            time.sleep(float(params["job_reaper_interval"]))
            try:
                reap(app, jobs, params, unreachable_at)
            except Exception:
                unreachable_at = time.time()
                log.warning("the reaper could not look for lost jobs", exc_info=True)

    thread = threading.Thread(target=loop, name="job-reaper", daemon=True)
    thread.start()
    return thread
