"""Where a Spark job's time goes, from Spark's event log (spark.eventLog.enabled).

``summarise(path, group)`` reads one application's event log (JSON lines, uncompressed) and sums
up the jobs run under one job group (the service runs each job's Spark work under the job's id):
how many jobs, their mean time, and per task the phases the Spark UI shows (scheduler delay,
deserialisation, executor run time, result serialisation, getting the result, result size). A
job's wall time is split into the time before its first task was launched (DAG scheduling,
stage submission, task serialisation and broadcast of the closure), the span of its tasks, and
the time after its last task ended until the job was reported done. Jobs are also counted by
the call site of their last stage ("treeAggregate at RDDLossFunction.scala:61").

    .venv/bin/python bench/sparkevents.py EVENT_LOG [--group JOB_ID]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TASK_PHASES = (
    ("scheduler_delay_ms", "scheduler delay"),
    ("deserialize_ms", "executor deserialize"),
    ("run_ms", "executor run"),
    ("result_serialize_ms", "result serialize"),
    ("getting_result_ms", "getting result"),
    ("gc_ms", "JVM GC (within run)"),
)


def log_files(path: Path) -> list[Path]:
    """The files of one event log: the file itself, or a rolling log's folder
    (eventlog_v2_<app>/events_<n>_<app>, Spark's default since 4.0) in the order of n."""
    if not path.is_dir():
        return [path]
    parts = [p for p in path.iterdir() if p.name.startswith("events_")]
    return sorted(parts, key=lambda p: int(p.name.split("_")[1]))


def events(path: Path) -> Iterable[dict[str, Any]]:
    for part in log_files(path):
        with part.open() as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)


def _task(event: dict[str, Any]) -> dict[str, float]:
    info, metrics = event["Task Info"], event.get("Task Metrics") or {}
    duration = info["Finish Time"] - info["Launch Time"]
    getting = info["Finish Time"] - info["Getting Result Time"] if info.get("Getting Result Time") else 0
    task = {
        "launch": info["Launch Time"],
        "finish": info["Finish Time"],
        "deserialize_ms": metrics.get("Executor Deserialize Time", 0),
        "run_ms": metrics.get("Executor Run Time", 0),
        "result_serialize_ms": metrics.get("Result Serialization Time", 0),
        "getting_result_ms": getting,
        "gc_ms": metrics.get("JVM GC Time", 0),
        "result_bytes": metrics.get("Result Size", 0),
    }
    busy = task["deserialize_ms"] + task["run_ms"] + task["result_serialize_ms"] + getting
    task["scheduler_delay_ms"] = max(0, duration - busy)
    return task


def read_jobs(path: Path, group: str | None = None) -> list[dict[str, Any]]:
    """The jobs of the log (of one job group when named), each with its stages' tasks."""
    jobs: dict[int, dict[str, Any]] = {}
    stage_job: dict[int, int] = {}
    stage_names: dict[int, str] = {}
    for event in events(path):
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            props = event.get("Properties") or {}
            if group is not None and props.get("spark.jobGroup.id") != group:
                continue
            job = {"id": event["Job ID"], "submitted": event["Submission Time"], "tasks": [], "stages": 0}
            jobs[job["id"]] = job
            for info in event.get("Stage Infos", []):
                stage_job[info["Stage ID"]] = job["id"]
                stage_names[info["Stage ID"]] = info.get("Stage Name", "?")
            last = max(event.get("Stage IDs") or [-1])
            job["name"] = stage_names.get(last, "?")
        elif kind == "SparkListenerStageCompleted":
            stage = event["Stage Info"]
            if stage["Stage ID"] in stage_job and stage_job[stage["Stage ID"]] in jobs:
                jobs[stage_job[stage["Stage ID"]]]["stages"] += 1
        elif kind == "SparkListenerTaskEnd" and stage_job.get(event["Stage ID"]) in jobs:
            jobs[stage_job[event["Stage ID"]]]["tasks"].append(_task(event))
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
            jobs[event["Job ID"]]["completed"] = event["Completion Time"]
    return [j for j in sorted(jobs.values(), key=lambda j: j["submitted"]) if "completed" in j]


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _union_ms(intervals: list[tuple[float, float]]) -> float:
    """Time covered by at least one of the intervals."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def _site(jobs: list[dict[str, Any]]) -> dict[str, float]:
    """The jobs of one call site: how many, their mean wall time, and their tasks' means."""
    walls = [j["completed"] - j["submitted"] for j in jobs]
    tasks = [t for j in jobs for t in j["tasks"]]
    return {
        "jobs": len(jobs),
        "mean_ms": _mean(walls),
        "sum_ms": sum(walls),
        "tasks_per_job": len(tasks) / len(jobs),
        "task_run_ms": _mean([t["run_ms"] for t in tasks]),
        "task_other_ms": _mean([t["finish"] - t["launch"] - t["run_ms"] for t in tasks]),
    }


def summary(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and means over the jobs (milliseconds, as the event log records them)."""
    tasks = [t for j in jobs for t in j["tasks"]]
    walls = [j["completed"] - j["submitted"] for j in jobs]
    before = [min(t["launch"] for t in j["tasks"]) - j["submitted"] for j in jobs if j["tasks"]]
    spans = [max(t["finish"] for t in j["tasks"]) - min(t["launch"] for t in j["tasks"]) for j in jobs if j["tasks"]]
    after = [j["completed"] - max(t["finish"] for t in j["tasks"]) for j in jobs if j["tasks"]]
    span = (jobs[-1]["completed"] - jobs[0]["submitted"]) if jobs else 0
    by_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        by_site[job["name"]].append(job)
    return {
        "jobs": len(jobs),
        "stages": sum(j["stages"] for j in jobs),
        "tasks": len(tasks),
        "tasks_per_job": len(tasks) / len(jobs) if jobs else 0.0,
        "job_mean_ms": _mean(walls),
        "job_median_ms": statistics.median(walls) if walls else 0.0,
        "job_sum_ms": sum(walls),
        "first_to_last_ms": span,
        "jobs_busy_ms": _union_ms([(j["submitted"], j["completed"]) for j in jobs]),
        "job_before_first_task_ms": _mean(before),
        "job_task_span_ms": _mean(spans),
        "job_after_last_task_ms": _mean(after),
        "task_mean": {key: _mean([t[key] for t in tasks]) for key, _ in TASK_PHASES},
        "task_result_bytes_mean": _mean([t["result_bytes"] for t in tasks]),
        "by_call_site": dict(
            sorted(((site, _site(site_jobs)) for site, site_jobs in by_site.items()), key=lambda kv: -kv[1]["sum_ms"])
        ),
        "call_sites": dict(Counter(j["name"] for j in jobs).most_common()),
    }


def report(result: dict[str, Any], out: Any = None) -> None:
    """Print a summary as a few readable lines."""
    import sys

    out = out or sys.stdout
    r = result
    print(
        f"    {r['jobs']} Spark jobs, {r['stages']} stages, {r['tasks']} tasks ({r['tasks_per_job']:.1f} per job); "
        f"job mean {r['job_mean_ms']:.1f} ms (median {r['job_median_ms']:.0f}), sum {r['job_sum_ms'] / 1000:.2f} s; "
        f"first job start to last job end {r['first_to_last_ms'] / 1000:.2f} s, "
        f"{r['jobs_busy_ms'] / 1000:.2f} s of it with a job running",
        file=out,
    )
    print(
        f"    a job's wall time: {r['job_before_first_task_ms']:.1f} ms until its first task launched, "
        f"{r['job_task_span_ms']:.1f} ms of tasks, {r['job_after_last_task_ms']:.1f} ms after the last one",
        file=out,
    )
    phases = ", ".join(f"{label} {r['task_mean'][key]:.1f}" for key, label in TASK_PHASES)
    print(f"    per task (mean ms): {phases}; result {r['task_result_bytes_mean']:.0f} bytes", file=out)
    print("    by call site: jobs x mean wall ms (tasks per job, task run ms + other task ms)", file=out)
    for site, f in list(r["by_call_site"].items())[:8]:
        print(
            f"      {f['jobs']:4d} x {f['mean_ms']:7.1f} ms ({f['tasks_per_job']:.1f} tasks, {f['task_run_ms']:.1f} + "
            f"{f['task_other_ms']:.1f} ms)  {site}",
            file=out,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="an event log, file or rolling folder (spark.eventLog.compress=false)")
    parser.add_argument("--group", help="only the jobs of this job group (a service job's id)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    result = summary(read_jobs(args.log, args.group))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
