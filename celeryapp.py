"""The Celery app both sides build: its settings and the names of the service's tasks.

The web process sends tasks by name with an app built here (``make_celery(params,
set_as_current=False)``); the worker (``worker.py``) builds one the same way and registers the
tasks on it. Nothing is read or built at import time.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from predictionservice.job import ScoringJob, TrainingJob

TRAIN_TASK = TrainingJob.task
PREDICTALL_TASK = ScoringJob.task
RETRAIN_TASK = "prediction_service.retrain"  # a schedule's tick (scheduler.py): a named model retrained


def redbeat_prefix(key_prefix: str) -> str:
    """Where redbeat keeps the schedules and its lock, behind the service's key prefix."""
    return key_prefix + "redbeat:"


def queue_key(params: dict[str, Any]) -> str:
    """The Redis list the broker keeps the queue's waiting messages in (kombu's own layout:
    the queue name, behind the global key prefix)."""
    return params["redis_key_prefix"] + params["queue_name"]


def celery_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Celery's own guidance for long jobs: acknowledge late, requeue when the process running a
    job is lost, one message at a time, and a visibility timeout beyond the longest job. A job
    whose message comes again after it ended is not run again (worker.run_job).

    The broker's connection pool is sized above what the web server's threads can hold at once
    (a broadcast holds a connection and a producer, which takes a second one; and the background
    ping), and a request waits for a pooled connection or producer at most redis_timeout seconds:
    kombu's default of 10, waited for without end, hung every thread once 12 of them pinged."""
    limit = int(params["job_time_limit"])
    prefix = {"global_keyprefix": params["redis_key_prefix"]} if params["redis_key_prefix"] else {}
    return {
        "broker_url": params["redis_url"],
        "result_backend": params["redis_url"],
        "broker_transport_options": {"visibility_timeout": limit + 600, **prefix},
        "result_backend_transport_options": {"retry_policy": {"timeout": 5.0}, **prefix},
        "broker_connection_retry_on_startup": True,
        "broker_pool_limit": 2 * int(params["threads"]) + 4,
        "broker_pool_acquire_timeout": float(params["redis_timeout"]),
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": int(params["worker_concurrency"]),
        # A broker outage (a Redis restart) must not kill the jobs running: they need Redis only to
        # report, which is best effort until their outcome, written with retries (MessageHandler).
        # Cancelling them (True) terminated each running job on a Redis restart, and its message,
        # restored while Redis was still away, was lost with it.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_time_limit": limit,
        "task_soft_time_limit": max(1, limit - min(60, limit // 10)),
        "result_expires": int(params["job_ttl"]),
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": params["queue_name"],
        "worker_hijack_root_logger": False,
        # The scheduler (celery beat, scheduler.py): redbeat's schedules and lock in the service's Redis.
        "beat_scheduler": "scheduler:RetrainScheduler",
        "beat_max_loop_interval": float(params["schedule_tick_seconds"]),
        "redbeat_redis_url": params["redis_url"],
        "redbeat_redis_options": {"socket_timeout": float(params["redis_timeout"])},
        "redbeat_key_prefix": redbeat_prefix(params["redis_key_prefix"]),
        "redbeat_lock_timeout": max(1, round(5 * float(params["schedule_tick_seconds"]))),
        "service_params": params,
    }


def make_celery(params: dict[str, Any], *, set_as_current: bool = True) -> Celery:
    app = Celery("prediction_service", set_as_current=set_as_current)
    app.conf.update(celery_settings(params))
    return app
