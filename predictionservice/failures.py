"""Why a job failed, in the words its record shows (moved out of worker.py, which keeps the
job's life cycle): the message for an error a job's work raised, and the reading of Spark's and
py4j's error texts that finds their cause."""

from __future__ import annotations

import re

from predictionservice.exceptions import ServiceError
from predictionservice.mongotarget import scrub


def failure_message(exc: BaseException, time_limit: float) -> str:
    """What a failed job's record says: a service error's own message; a time limit (time_limit,
    the job_time_limit setting) or a lost worker process in words; else the error's last cause
    line, with no internal host or URI in it."""
    name = type(exc).__name__
    if isinstance(exc, ServiceError):
        return exc.message
    if timed_out(exc):
        return f"the job exceeded its time limit of {time_limit} s and was stopped"
    if name == "WorkerLostError":
        return "the worker process running this job was lost (killed or out of memory)"
    cause = scrub(root_cause(str(exc)))
    if type(exc).__module__.split(".")[0] in ("pyspark", "py4j"):
        return f"the Spark job failed: {cause}" if cause else "the Spark job failed"
    return f"internal error ({name}): {cause}" if cause else f"internal error ({name})"


def timed_out(exc: BaseException | None) -> bool:
    """A time limit, even when it struck inside a py4j call that wrapped it in an error of its own."""
    pending, seen = [exc], set()
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        if type(exc).__name__ in ("TimeLimitExceeded", "SoftTimeLimitExceeded"):
            return True
        seen.add(id(exc))
        # py4j keeps the error it caught as .cause (Py4JNetworkError) rather than chaining it
        pending += [exc.__cause__, exc.__context__, getattr(exc, "cause", None)]
    return False


_CAUSE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|TooLarge|Failure|Exceeded)): (.+)$", re.MULTILINE)


def root_cause(text: str) -> str:
    """The last 'SomeError: message' line of a (Spark) error text: its Python-side cause."""
    matches = _CAUSE.findall(text)
    if matches:
        kind, message = matches[-1]
        return f"{kind}: {message.strip()}"[:300]
    return text.strip().splitlines()[0][:300] if text.strip() else ""
