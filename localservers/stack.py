"""``make run``: the whole service on one machine, self-contained.

* Redis: its own ``redis-server`` on ``local_redis_port`` (6390) with AOF persistence and
  ``noeviction``, data under ``var/redis``; an existing Redis only when ``$REDIS_URL`` names it
  (with a warning when that Redis does not persist).
* MongoDB: its own ``mongod`` (from PATH) or SecantusDB on ``local_mongo_port`` (27090), data under
  ``var/mongo``; an existing one only when ``$MONGODB_URI`` names it. A server that merely answers
  on a usual port (another checkout's, the machine's) is never adopted: its workers would take
  this service's jobs and its data would vanish when it stops.
* One ``make run`` per folder: ``var/make-run.lock`` is held while it runs; a second refuses.
* Every port it needs is checked before anything starts; a taken one is named with its holder.
* Loads the bank data into ``datasets.bank`` when that collection is empty and a CSV is found.
* Starts a Celery worker and the web server, waits until /health answers, prints the quick start.
* Settings whose default differs under make run (``MAKE_RUN_SETTINGS``: the prediction log is on)
  unless the environment or parameters.json sets them.

Stopping. SIGINT (Ctrl-C), SIGTERM and SIGHUP are handled from the start, SIGINT also when
make run was started with it ignored (``setsid nohup make run &``: a script's background job);
SIGHUP stays ignored under ``nohup``, which asks for that. The first one stops everything this run
started, in reverse order (web server and worker first, so the worker hands its job back while
Redis still runs), and nothing else. Nothing interrupts that stop half-way: a later signal only
hurries it (the Spark JVM and the web server are killed at once, the worker gets a few seconds
to hand its job back, then the servers stop; a third signal kills everything), and output to a
closed pipe or a gone terminal is dropped, not raised. The same SIGTERM or SIGHUP twice within a
second counts once: GNU make forwards SIGTERM to its child, so ``kill -TERM -- -<make's process
group>`` arrives twice.
Servers cannot outlive the stack: a watchdog process (localservers/watchdog.py) stops them, their
pool processes and Spark JVM included, when the stack dies however it ends, SIGKILL included.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

import pymongo
import redis

from localservers import embedded
from localservers.serviceprocesses import ServiceProcesses
from localservers.watchdog import RUN_ID_VARIABLE, Watchdog
from predictionservice import datasetloader, sampledata
from predictionservice.config import load_parameters, parameters_path, work_dir
from predictionservice.defaults import BANK_DATASET, SETTINGS
from predictionservice.version import __version__

# Settings make run turns on for a service one tries out on one machine (each unless $ENV or the
# parameters file sets it): the prediction log, so /feedback/ and the monitor have data.
MAKE_RUN_SETTINGS = {"prediction_log": "true"}

QUICK_START = """
The prediction service is up: {url}   (logs: {logs}; API: {url}/docs)

  curl -s {url}/health
  job=$(curl -s -X POST{auth} -H 'Content-Type: application/json' -d @job.json {url}/train/ \\
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
  curl -s{auth} {url}/training/status/$job
  curl -s -X POST{auth} -H 'Content-Type: application/json' \\
       -d '{{"modelkey": "'$job'", "record": {record}}}' {url}/predict/

docs/getting-started.md has the rest. Ctrl-C stops everything started here.
"""
SAMPLE_RECORD = {
    "age": 41,
    "job": "management",
    "marital": "married",
    "education": "tertiary",
    "default": "no",
    "balance": 1200,
    "housing": "yes",
    "loan": "no",
    "contact": "cellular",
    "day": 15,
    "month": "may",
    "duration": 420,
    "campaign": 1,
    "pdays": -1,
    "previous": 0,
    "poutcome": "unknown",
}


def say(message: str, stream: IO[str] | None = None) -> None:
    """Tell the user; never fail: a stop must not end half-way because stdout is a pipe whose
    reader is gone (``make run | tee log`` after Ctrl-C) or a terminal that hung up."""
    write(f"[make run] {message}\n", stream)


def write(text: str, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    try:
        stream.write(text)
        stream.flush()
    except BlockingIOError:  # a full non-blocking pipe: this line is dropped, the next may pass
        pass
    except (OSError, ValueError):  # ValueError: already closed; then nobody reads it any more
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())  # what is still buffered, and all that follows, is dropped
            os.close(devnull)
    except RuntimeError:  # a signal handler's line while the main code was printing: dropped
        pass


class Refused(RuntimeError):
    """make run cannot start as configured; the message says why and what to do."""


LOCAL = "127.0.0.1"


class Stack:
    def __init__(self, params: dict[str, Any], params_file: Path | None, environ: dict[str, str] | None = None):
        self.params = params
        self.params_file = params_file
        self.environ = dict(os.environ if environ is None else environ)
        self.var = work_dir() / params["var_dir"]  # an absolute var_dir stays as it is
        self.logs = self.var / "log"
        self.servers: list[embedded.ServerProcess] = []
        self.service: ServiceProcesses | None = None
        self._lock: IO[str] | None = None
        self._restarts: list[float] = []  # when a dead child was last started again
        self.guard: Watchdog | None = None
        self.stopping = False
        self._first_signal: tuple[int, float] | None = None  # (signal, when) of the one that began the stop
        self._hurries = 0  # signals after the first

    # ------------------------------------------------------------------ before anything starts

    def lock(self) -> None:
        """One make run per folder: two would share its servers, queue and data."""
        self.var.mkdir(parents=True, exist_ok=True)
        handle = open(self.var / "make-run.lock", "a+")  # closed (and so released) in stop()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise Refused(
                f"another make run (pid {holder}) is running from {self.var}; stop it first (Ctrl-C in its "
                "terminal), or give this one a folder of its own with VAR_DIR=..."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    def needed_ports(self) -> list[tuple[int, str, str]]:
        """(port, what needs it, the setting that moves it) for every port this run will bind."""
        ports = [(int(self.params["port"]), "the web server", "PORT")]
        if not self.environ.get("REDIS_URL"):
            ports.append((int(self.params["local_redis_port"]), "make run's redis-server", "LOCAL_REDIS_PORT"))
        if not self.environ.get("MONGODB_URI"):
            ports.append((int(self.params["local_mongo_port"]), "make run's MongoDB", "LOCAL_MONGO_PORT"))
        return ports

    def check_ports(self) -> None:
        taken = [
            f"port {port} ({what}) is taken by {embedded.port_holder(port)}; stop it or set {setting}=<another port>"
            for port, what, setting in self.needed_ports()
            if embedded.port_taken(LOCAL, port)
        ]
        if taken:
            raise Refused("nothing was started:\n  " + "\n  ".join(taken))

    # ------------------------------------------------------------------ dependencies

    def redis(self) -> str:
        url = self.environ.get("REDIS_URL")
        if url:
            if not embedded.redis_answers(url, timeout=2):
                raise Refused(f"REDIS_URL={url} does not answer")
            say(f"Redis: {url} (REDIS_URL){persistence_warning(url)}")
            return url
        port = int(self.params["local_redis_port"])
        server = embedded.start_redis(
            port, self.var / "redis", host=LOCAL, persistent=True, on_spawn=self._guard_server
        )
        self.servers.append(server)
        say(f"Redis: started redis-server on {LOCAL}:{port} (AOF, noeviction, data in {self.var / 'redis'})")
        return server.url

    def mongo(self) -> str:
        uri = self.environ.get("MONGODB_URI")
        if uri:
            if not embedded.mongo_answers(uri, timeout_ms=3000):
                raise Refused("MONGODB_URI does not answer")
            say("MongoDB: $MONGODB_URI")
            return uri
        port = int(self.params["local_mongo_port"])
        server = embedded.start_mongo(port, self.var / "mongo", host=LOCAL, on_spawn=self._guard_server)
        self.servers.append(server)
        say(f"MongoDB: started {server.name} on {LOCAL}:{port} (data in {self.var / 'mongo'})")
        return server.url

    def load_bank(self, uri: str) -> None:
        db, name = BANK_DATASET
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            collection = client[db][name]
            if collection.find_one({}, {"_id": 1}) is not None:
                say(f"{db}.{name}: already loaded ({collection.estimated_document_count()} documents)")
                return
            found = sampledata.find_bank_csv(self.params["bank_csv"] or None)
            if found is None:
                say(
                    f"{db}.{name}: empty and no bank-full.csv found (BANK_CSV, ./data/, ../shared/data/); "
                    "`python -m predictionservice.datasetloader download` fetches it"
                )
                return
            started = time.monotonic()
            n = datasetloader.load_csv(collection, found)
            say(f"{db}.{name}: loaded {n} documents from {found} in {time.monotonic() - started:.1f}s")

    # ----------------------------------------------------------------------- service

    def run_defaults(self) -> dict[str, str]:
        """The environment that gives the processes make run's own defaults (MAKE_RUN_SETTINGS),
        each only when neither the environment nor the parameters file sets the setting."""
        given: dict[str, Any] = {}
        if self.params_file is not None:
            with contextlib.suppress(OSError, ValueError):
                given = json.loads(Path(self.params_file).read_text())
        chosen = {}
        for key, value in MAKE_RUN_SETTINGS.items():
            variable = SETTINGS[key].env
            if variable not in self.environ and key not in given:
                chosen[variable] = value
        return chosen

    def start(self) -> None:
        self.lock()
        self.check_ports()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.guard = Watchdog(self.environ.get(RUN_ID_VARIABLE, ""), self.logs / "watchdog.log", self.environ)
        redis_url = self.redis()
        mongo_uri = self.mongo()
        self.load_bank(mongo_uri)
        env = {**self.environ, **self.run_defaults(), "REDIS_URL": redis_url, "MONGODB_URI": mongo_uri}
        params = {**self.params, "redis_url": redis_url, "mongodb_uri": mongo_uri}
        self.service = ServiceProcesses(
            params, self.params_file, self.logs, env, web_log=False, beat=True,
            on_spawn=self.guard.service if self.guard else None,
        )  # fmt: skip
        say(
            f"starting a Celery worker (log: {self.logs / 'worker.log'}), the retraining scheduler "
            f"(log: {self.logs / 'beat.log'}) and the web server"
        )
        self.service.start()
        self.service.wait_healthy()
        headers = self.service.auth_headers()
        auth = f" -H '{next(iter(headers))}: {next(iter(headers.values()))}'" if headers else ""
        record = json.dumps(SAMPLE_RECORD)
        write(QUICK_START.format(url=self.service.url, logs=self.logs, auth=auth, record=record) + "\n")

    def _guard_server(self, pgid: int) -> None:
        if self.guard is not None:
            self.guard.server(pgid)

    def check(self) -> None:
        """A worker (or web server) that died is started again, so a lost worker does not leave
        the queue without one; one that keeps dying within a minute ends the run, with its log."""
        if self.service is None or self.stopping:
            return
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
        for name in self.service.exited():
            if len(self._restarts) >= MAX_RESTARTS:
                self.service.check()  # raises, naming the process and its log
            code = self.service.children[name].returncode
            say(f"the {name} exited with {code}; starting it again (log: {self.logs / (name + '.log')})")
            if self.guard is not None:
                self.guard.forget(self.service.children[name].pid)  # restart() kills what is left of it
            self.service.restart(name)
            self._restarts.append(now)

    # ------------------------------------------------------------------ stopping

    def handle_signals(self) -> None:
        """Once, before anything starts: SIGINT, SIGTERM and SIGHUP stop the run, SIGINT even when
        it was ignored at start (a script's background job); SIGHUP ignored at start is nohup's
        request to outlive a hangup, and is kept."""
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
            signal.signal(signal.SIGHUP, self.on_signal)

    def on_signal(self, signum: int, frame: Any) -> None:
        """The first signal ends start-up or the run (KeyboardInterrupt, then stop()); any later
        one only hurries the stop, never interrupts it. The same SIGTERM or SIGHUP again within
        DUPLICATE_WINDOW is one request delivered twice (GNU make forwards SIGTERM to its child; a
        shell resends SIGHUP to its jobs), not an impatient user, so the stop stays a clean one."""
        now = time.monotonic()
        if not self.stopping:
            self.stopping = True
            self._first_signal = (signum, now)
            raise KeyboardInterrupt
        first = self._first_signal
        if first and signum == first[0] != signal.SIGINT and now - first[1] < DUPLICATE_WINDOW:
            return
        self.hurry(signum, frame)

    def run(self) -> int:
        """Start, serve until a signal or a failure, and stop in every case: the exit code."""
        code = 1
        try:
            code = self.serve()
        except KeyboardInterrupt:  # a signal while a failure was being reported
            pass
        finally:
            while True:
                try:
                    self.stop()
                    break
                except KeyboardInterrupt:  # a signal just before stop() began: stop from the start
                    continue
        return code

    def serve(self) -> int:
        try:
            self.start()
            while not self.stopping:
                self.check()
                time.sleep(1)
            return 0
        except KeyboardInterrupt:
            return 0
        except (SystemExit, RuntimeError) as exc:
            say(str(exc), sys.stderr)
            return 1

    def stop(self) -> None:
        """Stop what this run started, in reverse order; no signal interrupts it (a later one
        hurries it), and the watchdog, told last, stops whatever a failed step left."""
        self.stopping = True
        try:
            if self.service is not None:
                say("stopping the web server, the scheduler and the worker")
                self.service.stop(timeout=20)
            for server in reversed(self.servers):
                say(f"stopping {server.name}")
                server.stop()
        finally:
            if self.guard is not None:
                self.guard.close()
                self.guard = None
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def hurry(self, signum: int, frame: Any) -> None:
        """A second signal: Spark, the web server and the scheduler end at once, and the worker, its Spark work
        gone, has HURRY_GRACE seconds to hand its job back (to a Redis still running) before it
        is killed; then the servers. A third signal kills everything at once."""
        self._hurries += 1
        if self._hurries > 1 or self.service is None:
            say("another signal: killing what is left now")
            self.kill_everything()
            return
        say(f"second signal: hurrying the stop (Spark ends now; {HURRY_GRACE:.0f} s to hand back the running job)")
        self.service.kill("web")
        self.service.kill("beat")  # a scheduler holds no job: nothing to hand back
        worker = self.service.children.get("worker")
        if worker is not None:
            for pid in embedded.group_members(worker.pid, command="java"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            self.service.kill("worker", grace=HURRY_GRACE)
        for server in reversed(self.servers):
            server.stop(timeout=HURRY_GRACE)

    def kill_everything(self) -> None:
        groups = [p.pid for p in (self.service.children.values() if self.service else [])]
        groups += [server.pid for server in self.servers]
        for pid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


DUPLICATE_WINDOW = 1.0  # seconds within which the same SIGTERM or SIGHUP again is the same request
HURRY_GRACE = 5.0  # seconds a hurried worker has to hand its job back once its Spark JVM is gone
RESTART_WINDOW, MAX_RESTARTS = 60.0, 3  # at most 3 restarts a minute, then the run ends


def persistence_warning(url: str) -> str:
    """A named Redis that keeps nothing on disk loses every model and job record when it stops."""
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        appendonly = client.config_get("appendonly").get("appendonly")
        save = client.config_get("save").get("save")
    except redis.RedisError:
        return "; its persistence settings could not be read (CONFIG GET refused)"
    finally:
        client.close()
    if appendonly != "yes" and not save:
        return (
            "\n[make run] warning: this Redis does not persist (appendonly no, save ''): models and job records "
            "are lost when it stops"
        )
    return ""


def main() -> int:
    if sys.argv[1:] == ["--version"]:  # prediction-stack --version
        print(f"prediction-stack {__version__}")
        return 0
    # Every process this run starts inherits this run's id: the watchdog finds by it any that a
    # SIGKILL of this one left before it was registered.
    os.environ[RUN_ID_VARIABLE] = secrets.token_hex(8)
    found = parameters_path()
    params_file = found if found.exists() else None  # none: the built-in defaults
    params = load_parameters(params_file)
    stack = Stack(params, params_file)
    stack.handle_signals()
    return stack.run()


if __name__ == "__main__":
    sys.exit(main())
