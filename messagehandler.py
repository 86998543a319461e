"""MessageHandler: how a running job tells the world where it is (the classic class).

``MessageHandler(task).update(state, message, progress)`` moves the job record clients poll and
mirrors the state into Celery's own result backend. It knows a task only by duck typing
(``request.id``, ``update_state``, and a ``jobs`` store), so the core never imports Celery.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import redis

from predictionservice.defaults import FINAL_UPDATE_ATTEMPTS, FINAL_UPDATE_FIRST_WAIT
from predictionservice.jobstore import FINAL, JobStore

log = logging.getLogger("prediction_service.jobs")


class MessageHandler:
    def __init__(self, task: Any, jobs: JobStore | None = None):
        self.task = task
        self.jobs: JobStore = jobs if jobs is not None else task.jobs
        # Celery's request is thread-local: Spark's CrossValidator reports from its own threads.
        self.job_id: str = task.request.id
        self._spark_ui: str | None = None

    def update(self, state: str, message: str, progress: float | None = None, **extra: Any) -> bool:
        """Record a state; False when the job was already final (the update is then ignored).

        A step on the way is best effort: Redis away for a moment must not kill the job it
        reports on (the update raised inside CrossValidator). The final state is what clients
        wait for, so it is retried with a doubling wait before the error is let through."""
        job_id = self.job_id
        if state in FINAL:
            moved = self._final(state, message, progress, **extra)
        else:
            try:
                moved = self.jobs.update(job_id, state, message, progress, **extra)
            except redis.RedisError as exc:
                log.warning("job %s: step %r not recorded, Redis did not answer (%s)", job_id, message, exc)
                return False
        if moved:
            log.info("job %s %s %s%s", job_id, state, message, f" ({progress:.0%})" if progress is not None else "")
            if state not in FINAL:  # Celery records its own outcome when the task returns
                meta = {"message": message, "progress": progress}
                try:
                    self.task.update_state(task_id=job_id, state=state, meta=meta)
                except Exception:  # the job record is what clients read; Celery's copy is a courtesy
                    log.warning("could not mirror state %s of job %s into Celery", state, job_id, exc_info=True)
        return moved

    def _final(self, state: str, message: str, progress: float | None, **extra: Any) -> bool:
        for attempt in range(FINAL_UPDATE_ATTEMPTS - 1):
            try:
                return self.jobs.update(self.job_id, state, message, progress, **extra)
            except redis.RedisError as exc:
                wait = FINAL_UPDATE_FIRST_WAIT * 2**attempt
                log.warning("job %s: %s not recorded yet (%s); again in %.1f s", self.job_id, state, exc, wait)
                time.sleep(wait)
        return self.jobs.update(self.job_id, state, message, progress, **extra)  # its error is let through

    def progress(self, message: str, progress: float) -> None:
        """A step of running Spark work; with the Spark UI on (spark_ui), its address too, so a
        user watching a long job knows where to look."""
        ui = self.spark_ui()
        self.update("SUBMITTED", message, progress, **({"spark_ui": ui} if ui else {}))

    def spark_ui(self) -> str | None:
        """This process's Spark UI, once its session runs; Spark is never imported for it."""
        if self._spark_ui is None:
            session = sys.modules.get("predictionservice.sparksession")
            self._spark_ui = session.ui_url() if session is not None else None
        return self._spark_ui
