"""celeryapp.py: the settings both sides build their Celery app from (a job's message outlives the
job, survives a lost worker, is taken one at a time) and the queue's Redis key, read from the
settings alone: nothing is built or read at import."""

from __future__ import annotations

import celery

from celeryapp import celery_settings, make_celery, queue_key
from predictionservice.config import load_parameters


def params(**overrides):
    return load_parameters(environ={}, overrides=overrides)


def test_the_queue_key_is_kombus_list_behind_the_prefix():
    assert queue_key(params(redis_key_prefix="", queue_name="jobs")) == "jobs"
    assert queue_key(params(redis_key_prefix="team-a:", queue_name="jobs")) == "team-a:jobs"


def test_a_message_outlives_the_longest_job_and_is_acknowledged_after_it():
    settings = celery_settings(params(job_time_limit=3600))
    assert settings["broker_transport_options"]["visibility_timeout"] > settings["task_time_limit"] == 3600
    assert settings["task_soft_time_limit"] < settings["task_time_limit"]
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    assert settings["worker_prefetch_multiplier"] == 1
    assert settings["worker_cancel_long_running_tasks_on_connection_loss"] is False


def test_a_short_limit_keeps_a_soft_limit_of_a_second_at_least():
    assert celery_settings(params(job_time_limit=1))["task_soft_time_limit"] == 1
    assert celery_settings(params(job_time_limit=30))["task_soft_time_limit"] == 27


def test_the_pool_outgrows_what_the_server_threads_hold_and_waits_redis_timeout():
    settings = celery_settings(params(threads=16, redis_timeout=2.5))
    assert settings["broker_pool_limit"] > 2 * 16
    assert settings["broker_pool_acquire_timeout"] == 2.5


def test_the_key_prefix_reaches_broker_and_results_only_when_set():
    plain = celery_settings(params(redis_key_prefix=""))
    assert "global_keyprefix" not in plain["broker_transport_options"]
    prefixed = celery_settings(params(redis_key_prefix="team-a:"))
    assert prefixed["broker_transport_options"]["global_keyprefix"] == "team-a:"
    assert prefixed["result_backend_transport_options"]["global_keyprefix"] == "team-a:"


def test_the_web_process_app_is_not_made_current():
    before = celery.current_app
    app = make_celery(params(queue_name="jobs"), set_as_current=False)
    assert celery.current_app is before and app is not before
    assert app.conf.task_default_queue == "jobs" and app.conf.accept_content == ["json"]
