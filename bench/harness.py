"""What every benchmark shares: private servers, the service, its HTTP API, the bank data, the
scikit-learn side of the baselines, and the result file.

A benchmark runs inside ``with Bench(name, args) as bench:``. Everything it starts through the
bench (redis-server, SecantusDB, the Celery worker and web server, extra servers, a SparkSession)
is stopped when the block ends, however it ends: normally, on an error, on Ctrl-C or on SIGTERM
(SIGHUP too). Any child process left over after that (one interrupted while it was starting) is
ended by its pid. The temporary directory (data and logs) is removed after a clean run and kept,
with its path printed, after a failure or with ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import numpy as np  # noqa: E402
import pymongo  # noqa: E402
import requests  # noqa: E402

from dataparser import DataParser  # noqa: E402
from localservers import embedded  # noqa: E402
from localservers.serviceprocesses import ServiceProcesses  # noqa: E402
from predictionservice import datasetloader, datasetreaders, sampledata  # noqa: E402
from predictionservice.config import load_parameters  # noqa: E402
from predictionservice.defaults import SETTINGS  # noqa: E402
from predictionservice.exceptions import RecordError  # noqa: E402
from predictionservice.modelstore import ModelStore  # noqa: E402
from predictionservice.redisclient import connect  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
JOB: dict[str, Any] = json.loads((ROOT / "job.json").read_text())
FINAL = ("COMPLETED", "FAILED")
BANK = "datasets.bank"
# Sized for a 2-core machine (see bench/README.md).
SIZING: dict[str, Any] = {
    "spark_master": "local[2]",
    "spark_shuffle_partitions": 2,
    "spark_driver_memory": "1g",
    "worker_concurrency": 1,
}
# Environment variables that would override the parameters file the benchmark writes.
SETTING_ENV = frozenset(s.env for s in SETTINGS.values())


def default_csv() -> Path:
    found = sampledata.find_bank_csv(os.environ.get("BANK_CSV"))
    return found if found is not None else sampledata.bank_csv_candidates(os.environ.get("BANK_CSV"))[0]


# --------------------------------------------------------------------------------- options


def arg_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smoke test: small sizes, well under a minute")
    parser.add_argument("--csv", type=Path, default=default_csv(), help="bank-full.csv (default: %(default)s)")
    parser.add_argument(
        "--rows", type=int, default=None, help="use only the first N rows of the CSV (default: all; --quick: 10000)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (data and logs)")
    return parser


def parse_args(
    parser: argparse.ArgumentParser,
    normal: Mapping[str, Any],
    quick: Mapping[str, Any],
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Options left unset (None) take the --quick value when quick, else the normal one."""
    args = parser.parse_args(argv)
    merged = {"rows": None, **normal}
    quick = {"rows": 10_000, **quick}
    for name, value in merged.items():
        if getattr(args, name, None) is None:
            setattr(args, name, quick.get(name, value) if args.quick else value)
    if not args.csv.exists():
        parser.error(f"{args.csv} not found (set --csv or BANK_CSV)")
    return args


# ------------------------------------------------------------------------------- processes


def command_line() -> str:
    """The command that reproduces this run, as typed from the checkout's root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return " ".join([".venv/bin/python", str(shown), *sys.argv[1:]])


def commit() -> str:
    """The checkout's commit, with ``-dirty`` when its tracked files differ from it: a result
    names the code it measured."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--"], capture_output=True, check=False).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(main: Callable[[], int]) -> int:
    """A benchmark's exit status: main's, or 130 when interrupted (Ctrl-C, SIGTERM, SIGHUP)."""
    try:
        return main()
    except KeyboardInterrupt as exc:
        print(f"interrupted ({str(exc) or 'Ctrl-C'}); everything this run started was stopped", file=sys.stderr)
        return 130


def own_children() -> dict[int, str]:
    """This process's live children (pid: command line), but multiprocessing's resource
    tracker, which ends by itself when this process does."""
    found = {}
    for pid in embedded.child_pids(os.getpid(), running_only=True):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "multiprocessing.resource_tracker" not in command:
                found[pid] = command.strip()
    return found


def end_process(pid: int) -> None:
    """TERM (its whole group when it leads one), then KILL after a few seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError, ChildProcessError):
        leader = os.getpgid(pid) == pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if leader:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
            for _ in range(50):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
                time.sleep(0.1)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def rss_mb(pid: int) -> float:
    """Resident set size of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Bench:
    """One benchmark run: its temporary directory, what it started, its figures."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name = name
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self._stops: list[tuple[str, Callable[[], Any]]] = []
        self._signals: dict[int, Any] = {}
        self.redis_url = ""
        self.mongo_uri = ""
        self.mongo: pymongo.MongoClient | None = None
        self.started = time.monotonic()
        self.result: dict[str, Any] = {
            "benchmark": name,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": command_line(),
            "commit": commit(),
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": {"cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg())},
            "figures": {},
            "ratios": {},
        }

    # --------------------------------------------------------------------- life cycle

    def __enter__(self) -> Bench:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._signals[sig] = signal.signal(sig, _interrupt)
        print(f"[{self.name}] {'quick run' if self.args.quick else 'full run'}; work directory {self.dir}")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # Another Ctrl-C or SIGTERM must not cut the cleanup short.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            self.say("stopping what this run started")
            self.stop_all()
            self.say("stopped")
        finally:
            signal.signal(signal.SIGINT, previous[signal.SIGINT])
            for sig, handler in self._signals.items():
                signal.signal(sig, handler)
        if exc_type is None and not self.args.keep:
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"[{self.name}] data and logs kept in {self.dir}")

    def on_stop(self, label: str, stop: Callable[[], Any]) -> None:
        self._stops.append((label, stop))

    def stop_all(self) -> None:
        while self._stops:
            label, stop = self._stops.pop()
            started = time.monotonic()
            try:
                stop()
            except Exception as exc:
                print(f"[{self.name}] stopping {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
            if time.monotonic() - started > 2:
                self.say(f"stopping {label} took {time.monotonic() - started:.1f}s")
        for pid, command in own_children().items():
            self.say(f"ending leftover child process {pid}: {command[:100]}")
            end_process(pid)

    def say(self, message: str) -> None:
        print(f"[{self.name} {time.monotonic() - self.started:6.1f}s] {message}", flush=True)

    # ----------------------------------------------------------------------- servers

    def start_stores(self) -> None:
        """A private redis-server (no persistence) and SecantusDB, each on a free port."""
        redis_server = embedded.start_redis(embedded.free_port(), self.dir / "redis", persistent=False)
        self.on_stop("redis-server", redis_server.stop)
        self.redis_url = redis_server.url
        mongo_server = embedded.start_mongo(embedded.free_port(), self.dir / "mongo", use_mongod=False)
        self.on_stop(mongo_server.name, mongo_server.stop)
        self.mongo_uri = mongo_server.url
        self.mongo = pymongo.MongoClient(self.mongo_uri, serverSelectionTimeoutMS=10_000)
        self.on_stop("MongoDB client", self.mongo.close)
        self.say(f"redis-server at {self.redis_url}, {mongo_server.name} at {self.mongo_uri}")

    def params(self, **overrides: Any) -> dict[str, Any]:
        """Built-in defaults (not the project's parameters.json), the 2-core sizing, this run's
        servers, a free port, then overrides."""
        empty = self.dir / "defaults.json"
        empty.write_text("{}")
        values = {
            **SIZING,
            "redis_url": self.redis_url,
            "mongodb_uri": self.mongo_uri,
            "port": embedded.free_port(),
            **overrides,
        }
        return load_parameters(empty, environ={}, overrides=values)

    def write_params(self, params: dict[str, Any], name: str) -> Path:
        path = self.dir / f"{name}.json"
        path.write_text(json.dumps(params, indent=2))
        return path

    def start_service(self, params: dict[str, Any], *, worker: bool = True, name: str = "") -> ServiceProcesses:
        """The Celery worker (when asked) and the web server, healthy; name: another one's (a second
        web replica), its parameters and logs apart."""
        env = {k: v for k, v in os.environ.items() if k not in SETTING_ENV}
        service = ServiceProcesses(
            params,
            self.write_params(params, f"{name}-parameters" if name else "parameters"),
            self.dir / "logs" / name if name else self.dir / "logs",
            env,
            worker=worker,
            worker_name=f"bench-{uuid.uuid4().hex[:6]}@%h",
        )
        self.on_stop(f"the service {name}".strip(), service.stop)
        service.start()
        service.wait_healthy(timeout=180)
        self.say(f"service at {service.url}" + (" with a worker" if worker else " (web server only)"))
        return service

    def start_server(
        self, name: str, argv: list[str], url: str, ready: Callable[[], bool], timeout: float = 60
    ) -> embedded.ServerProcess:
        """A server process of the benchmark's own (its own session); stopping it also ends
        whatever its process group still holds (worker processes of a pre-forking server)."""
        server = embedded.ServerProcess(name, argv, url, self.dir / "logs" / f"{name}.log", cwd=ROOT)

        self.on_stop(name, server.stop)  # which also kills what its process group still holds
        server.wait_until(ready, timeout)
        return server

    # -------------------------------------------------------------------------- data

    def csv_bytes(self) -> bytes:
        """The CSV (its first --rows rows when set), read once."""
        data = self.args.csv.read_bytes()
        if self.args.rows is None:
            return data
        lines = data.splitlines(keepends=True)
        return b"".join(lines[: self.args.rows + 1])

    def load_bank(self, namespace: str = BANK) -> int:
        db, _, name = namespace.partition(".")
        started = time.perf_counter()
        n = datasetloader.load_csv(self.mongo[db][name], io.BytesIO(self.csv_bytes()))
        self.say(f"loaded {n} rows into {namespace} in {time.perf_counter() - started:.1f}s")
        return n

    def collection(self, namespace: str) -> Any:
        db, _, name = namespace.partition(".")
        return self.mongo[db][name]

    # ----------------------------------------------------------------------- results

    def figure(self, key: str, value: Any, unit: str = "", note: str = "") -> Any:
        self.result["figures"][key] = value
        shown = f"{value:,.4g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        print(f"  {key:<44} {shown} {unit}{'   (' + note + ')' if note else ''}", flush=True)
        return value

    def ratio(self, key: str, numerator: str, denominator: str, goal: str = "") -> float | None:
        """figures[numerator] / figures[denominator]; goal like '>= 0.8' or '<= 3'."""
        num, den = self.result["figures"].get(numerator), self.result["figures"].get(denominator)
        value = round(num / den, 4) if num is not None and den else None
        entry: dict[str, Any] = {"value": value, "of": f"{numerator} / {denominator}"}
        met = ""
        if goal and value is not None:
            op, target = goal.split()
            entry["goal"] = goal
            entry["met"] = value >= float(target) if op == ">=" else value <= float(target)
            met = f"goal {goal}: {'met' if entry['met'] else 'NOT met'}"
        self.result["ratios"][key] = entry
        shown = f"{value:.3f}" if value is not None else "n/a"
        print(f"  {key:<44} {shown}   ({numerator} / {denominator}){'   ' + met if met else ''}", flush=True)
        return value

    def goal(self, key: str, figure: str, goal: str) -> None:
        """A goal on an absolute figure, recorded beside the ratios."""
        value = self.result["figures"].get(figure)
        op, target = goal.split()
        met = value is not None and (value >= float(target) if op == ">=" else value <= float(target))
        self.result.setdefault("goals", {})[key] = {"figure": figure, "value": value, "goal": goal, "met": met}
        print(f"  goal {key:<39} {figure} {goal}: {'met' if met else 'NOT met'}", flush=True)

    def median(self, key: str, values: Sequence[float], unit: str = "", note: str = "") -> float:
        """The median of one arm's rounds as the figure, its spread (min, max, every value)
        recorded beside it and shown."""
        values = [round(value, 3) for value in values]
        middle = statistics.median(values)
        self.result.setdefault("spreads", {})[key] = {"min": min(values), "max": max(values), "values": values}
        spread = f"{len(values)} rounds, {min(values):,.4g} to {max(values):,.4g}"
        return self.figure(key, middle, unit, f"median of {spread}" + (f"; {note}" if note else ""))

    def paired_ratio(
        self, key: str, numerator: Sequence[float], denominator: Sequence[float], goal: str = "", of: str = ""
    ) -> float:
        """The median of the rounds' ratios (round i's numerator over round i's denominator,
        measured next to each other, so a slower minute of the machine falls on both) and their
        spread; goal like '>= 0.8' or '<= 1.2'."""
        ratios = [round(n / d, 4) for n, d in zip(numerator, denominator, strict=True) if d]
        value = statistics.median(ratios)
        entry: dict[str, Any] = {"value": value, "of": of or key, "rounds": ratios}
        entry.update(min=min(ratios), max=max(ratios))
        met = ""
        if goal:
            op, target = goal.split()
            entry["goal"] = goal
            entry["met"] = value >= float(target) if op == ">=" else value <= float(target)
            met = f"   goal {goal}: {'met' if entry['met'] else 'NOT met'}"
        self.result["ratios"][key] = entry
        spread = f"median of {len(ratios)} rounds, {min(ratios):.3f} to {max(ratios):.3f}"
        print(f"  {key:<44} {value:.3f}   ({spread}){met}", flush=True)
        return value

    def section(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def save(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.result["seconds"] = round(time.monotonic() - self.started, 1)
        self.result["machine"]["loadavg_at_end"] = list(os.getloadavg())
        path = RESULTS_DIR / f"{self.name}.json"
        path.write_text(json.dumps(self.result, indent=2, default=str) + "\n")
        print(f"\n[{self.name}] result written to {path.relative_to(ROOT)} ({self.result['seconds']}s in all)")
        return path


def interleaved(
    bench: Bench, arms: Sequence[str], rounds: int, measure: Callable[[str], Mapping[str, float]]
) -> dict[str, dict[str, list[float]]]:
    """Every arm measured once a round, in turn (A B C, then B C A, then C A B ...): the noise of a
    shared machine falls on each alike, and no arm always runs first or after the same one.
    ``measure(arm)`` returns the round's figures by name; the answer holds, for each arm, each
    figure's list over the rounds (round i at index i)."""
    runs: dict[str, dict[str, list[float]]] = {arm: {} for arm in arms}
    for round_ in range(rounds):
        order = [*arms[round_ % len(arms) :], *arms[: round_ % len(arms)]]
        for arm in order:
            figures = measure(arm)
            for name, value in figures.items():
                runs[arm].setdefault(name, []).append(value)
            shown = ", ".join(f"{name} {value:,.4g}" for name, value in figures.items())
            bench.say(f"round {round_ + 1}/{rounds} {arm}: {shown}")
    bench.result.setdefault("rounds", {}).update(runs)
    return runs


# ------------------------------------------------------------------------------- the API


class Api:
    """The service's HTTP API over one keep-alive session."""

    def __init__(self, service: ServiceProcesses):
        self.url = service.url
        self.session = requests.Session()
        self.session.headers.update(service.auth_headers())

    def call(self, method: str, path: str, expect: int = 200, timeout: float = 60, **kwargs: Any) -> Any:
        """One request; timeout: seconds without a byte sent or received (a large upload's answer
        comes only once the load is published)."""
        response = self.session.request(method, self.url + path, timeout=timeout, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def run_job(self, path: str, body: dict[str, Any], poll: float = 0.1, timeout: float = 3600) -> dict[str, Any]:
        """POST a job, poll its status every `poll` seconds until final. The status, its history,
        the wall time from POST to the final status, and the POST's epoch time."""
        submitted_at = time.time()
        started = time.perf_counter()
        job_id = self.call("POST", path, 202, json=body)["job_id"]
        answered = time.perf_counter() - started
        status_path = {"/train/": "/training/status/", "/predictall/": "/predictall/status/"}[path]
        deadline = started + timeout
        while True:
            status = self.call("GET", status_path + job_id)
            if status["status"] in FINAL:
                seconds = time.perf_counter() - started
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"job {job_id} not final after {timeout:.0f}s: {status}")
            time.sleep(poll)
        history = self.call("GET", f"/jobs/{job_id}", params={"history": "1"})["history"]
        if status["status"] != "COMPLETED":
            raise RuntimeError(f"job {job_id} {status['status']}: {status['message']}")
        return {
            "job_id": job_id,
            "status": status,
            "history": history,
            "seconds": seconds,
            "submitted_at": submitted_at,
            "answered": answered,
        }


def warm_then_timed(bench: Bench, api: Api, path: str, body: dict[str, Any], repeat: int) -> dict[str, Any]:
    """One job run untimed (its time is the figure cold_seconds), then `repeat` timed runs; the
    (lower) median run, with the times of all of them as its 'times'."""
    cold = api.run_job(path, body)
    bench.figure("cold_seconds", cold["seconds"], "s", "first run: Spark starts in the worker (untimed)")
    runs = []
    for i in range(repeat):
        runs.append(api.run_job(path, body))
        bench.say(f"timed run {i + 1} of {repeat}: {runs[-1]['seconds']:.2f}s")
    median = sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]
    median["times"] = ", ".join(f"{run['seconds']:.2f}" for run in runs)
    return median


# The stage a job step opens, by the start of its message (the worker's progress messages).
STAGES = {
    "the POST": "POST answered",
    "job ": "start",
    "reading": "read + encode + count (Spark)",
    "encoded": "split + cache",
    "fitting": "cross-validation",
    "cross-validation": "cross-validation",
    "evaluating": "held-out evaluation",
    "saving": "save the model",
    "scoring": "score + write (Spark)",
    "model ": "until the client saw COMPLETED",
    "scored": "until the client saw COMPLETED",
}


def epoch(value: Any) -> float:
    """Epoch seconds of a job record's time: the API's ISO 8601 UTC ('...T23:15:04.123Z'), or a
    number as the records held before issue 12."""
    if isinstance(value, (int, float)):
        return float(value)
    from datetime import datetime

    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def stage_times(run: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Each step of a job run with the time until the next one, and those times by stage. The
    first step counts from the POST (queueing); the last one until the client saw it final."""
    steps = [{"step": "answered: the POST's 202", "seconds": round(run["answered"], 3)}]
    since, label = run["submitted_at"] + run["answered"], "queued: the 202 to the worker's first update"
    for step in run["history"]:
        at = epoch(step["updated_at"])
        steps.append({"step": label, "seconds": round(at - since, 3)})
        since, label = at, f"{step['status']}: {step['message']}"
    steps.append({"step": label, "seconds": round(run["submitted_at"] + run["seconds"] - since, 3)})
    stages: dict[str, float] = {}
    for step in steps:
        message = step["step"].split(": ", 1)[1]
        stage = next((name for prefix, name in STAGES.items() if message.startswith(prefix)), "queued")
        stages[stage] = round(stages.get(stage, 0.0) + step["seconds"], 3)
    return steps, stages


def report_stages(bench: Bench, run: dict[str, Any]) -> None:
    """Print the stages of a job run and keep its steps and stages in the result."""
    steps, stages = stage_times(run)
    bench.result["steps"] = steps
    bench.result["stages"] = stages
    print("  stages of that run (from GET /jobs/<id>?history=1):")
    for stage, seconds in stages.items():
        print(f"    {stage:<42} {seconds:8.3f} s")


# ---------------------------------------------------------------------- the sklearn side


def bank_documents(bench: Bench) -> list[dict[str, Any]]:
    """The rows of the CSV as the loader types them (numbers as numbers)."""
    text = datasetreaders.text_stream(io.BytesIO(bench.csv_bytes()))
    return list(datasetreaders.iter_csv_documents(text))


def encode_valid(
    parser: DataParser, docs: Sequence[Mapping[str, Any]], *, labels: bool = True, chunk: int = 5000
) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """Feature matrix (DataParser.encode) of the documents that encode, their labels, and the
    indices of those documents; a chunk holding a bad record is encoded record by record."""
    blocks: list[np.ndarray] = []
    kept: list[int] = []
    for start in range(0, len(docs), chunk):
        part = docs[start : start + chunk]
        try:
            blocks.append(parser.encode(part))
            kept.extend(range(start, start + len(part)))
        except RecordError:
            for i, doc in enumerate(part):
                with contextlib.suppress(RecordError):
                    blocks.append(parser.encode([doc]))
                    kept.append(start + i)
    X = np.vstack(blocks) if blocks else np.zeros((0, parser.num_features))
    y = np.asarray([parser.encode_label(docs[i]) for i in kept]) if labels else None
    return X, y, kept


def logistic_pipeline(C: float, iterations: int, tol: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [("scale", StandardScaler()), ("logisticregression", LogisticRegression(C=C, max_iter=iterations, tol=tol))]
    )


def c_of(reg_param: float, n_train: int) -> float:
    """scikit-learn's C for Spark's regParam: C = 1 / (regParam * n); regParam 0 is 'no penalty'."""
    return 1.0 / (reg_param * n_train) if reg_param > 0 else 1e12


def model_document(job: Mapping[str, Any], key: str, pipeline: Any, metrics: dict[str, float]) -> dict[str, Any]:
    """A LogisticRegressionWrapper model (what its train() stores) from a fitted
    StandardScaler + LogisticRegression pipeline, with coefficients on the raw features."""
    parser = DataParser(job["schema"])
    scaler, lr = pipeline.named_steps["scale"], pipeline.named_steps["logisticregression"]
    weights = lr.coef_[0] / scaler.scale_
    intercept = float(lr.intercept_[0] - np.dot(weights, scaler.mean_))
    return {
        "model_key": key,
        "name": "LogisticRegressionWrapper",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "coefficients": [float(w) for w in weights],
        "intercept": intercept,
        "numFeatures": parser.num_features,
        "numClasses": 2,
        "feature_names": parser.feature_names(),
        "schema": parser.schema(),
        "parameters": dict(job),
        "metrics": metrics,
        "training": {"by": "bench/harness.py (scikit-learn fit, stored through ModelStore)"},
    }


def fit_and_store(bench: Bench, params: dict[str, Any], job: Mapping[str, Any], docs: Iterable[dict]) -> dict:
    """A real LogisticRegressionWrapper model with job's schema, fitted with scikit-learn on docs
    (regParam: the job's middle value) and saved in the models database through ModelStore."""
    from sklearn.metrics import roc_auc_score

    docs = list(docs)
    X, y, _ = encode_valid(DataParser(job["schema"]), docs)
    grid = sorted(job.get("regParam", [0.01]))
    pipeline = logistic_pipeline(c_of(grid[len(grid) // 2], len(y)), int(job["iterations"]), float(job["tol"]))
    pipeline.fit(X, y)
    auc = float(roc_auc_score(y, pipeline.predict_proba(X)[:, 1]))
    key = f"bench-{uuid.uuid4().hex[:12]}"
    model = model_document(job, key, pipeline, {"auc": auc})
    ModelStore(connect(params["redis_url"], params["models_db"])).save(key, model)
    bench.say(f"stored model {key}: scikit-learn fit on {len(y)} rows, training AUC {auc:.4f}")
    return model
