"""The service's own processes, a Celery worker, the retraining scheduler (celery beat) and the web
server, run from one parameters file.

``make run`` (localservers/stack.py), the tests and the benchmarks all start the service through this class,
so they exercise the very same command lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import requests

from localservers.embedded import child_pids
from predictionservice.config import PROJECT_DIR


class ServiceProcesses:
    def __init__(
        self,
        params: dict[str, Any],
        params_file: Path | None,
        logs: Path,
        env: dict[str, str] | None = None,
        *,
        worker: bool = True,
        beat: bool = False,
        worker_name: str = "prediction-service@%h",
        web_log: bool = True,
        on_spawn: Callable[[int], None] | None = None,
    ):
        self.params = params
        self.params_file = params_file
        self.logs = logs
        self.env = dict(os.environ if env is None else env)
        # No file: the processes run on the built-in defaults and the environment, as params did.
        self.env.pop("PARAMETERS_FILE", None)
        if params_file is not None:
            self.env["PARAMETERS_FILE"] = str(params_file)
        self.env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        self.with_worker = worker
        self.with_beat = beat
        self.worker_name = worker_name
        self.web_log = web_log
        self.on_spawn = on_spawn  # told each child's process group as soon as it exists (make run's watchdog)
        self.children: dict[str, subprocess.Popen] = {}
        self._commands: dict[str, tuple[list[str], Path | None]] = {}
        self._files: list[IO[bytes]] = []

    @property
    def url(self) -> str:
        host = self.params["host"] if self.params["host"] not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.params['port']}"

    def auth_headers(self) -> dict[str, str]:
        token = self.params.get("auth_token")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _spawn(self, name: str, argv: list[str], log: Path | None) -> None:
        self._commands[name] = (argv, log)
        out = None
        if log is not None:
            out = open(log, "ab")  # closed in stop()
            self._files.append(out)
        self.children[name] = subprocess.Popen(
            argv,
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,  # stop() signals the whole group: pool processes and Spark JVMs too
        )
        if self.on_spawn is not None:
            self.on_spawn(self.children[name].pid)

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.with_worker:
            self._spawn(
                "worker",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "modelservice.celery",
                    "worker",
                    "-Q",
                    self.params["queue_name"],
                    "-l",
                    "info",
                    "-c",
                    str(self.params["worker_concurrency"]),
                    "-n",
                    self.worker_name,
                    # Workers here share nothing through Celery's own sync (jobs are handed back by
                    # the job store's heartbeats, not by revoke): mingle's one-second wait at start
                    # and gossip's events to every worker buy nothing.
                    "--without-mingle",
                    "--without-gossip",
                ],
                self.logs / "worker.log",
            )
        if self.with_beat:
            self.start_beat()
        self._spawn(
            "web",
            [sys.executable, "modelserver.py", *([str(self.params_file)] if self.params_file else [])],
            self.logs / "web.log" if self.web_log else None,
        )

    def start_beat(self, name: str = "beat") -> None:
        """A retraining scheduler (scheduler.py): celery beat with redbeat's scheduler, its schedule
        and lock in the service's Redis. Several may run (tests start two): one fires, the others
        wait for its lock."""
        argv = [sys.executable, "-m", "celery", "-A", "modelservice.celery", "beat", "-S", "scheduler.RetrainScheduler",
                "-l", "info"]  # fmt: skip
        self._spawn(name, argv, self.logs / f"{name}.log")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def exited(self) -> list[str]:
        """The children that are no longer running."""
        return [name for name, process in self.children.items() if process.poll() is not None]

    def restart(self, name: str) -> None:
        """Start a child that exited again, with the command it was started with; what is left of
        its process group (a pool process, a Spark JVM) is killed first."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.children[name].pid, signal.SIGKILL)
        argv, log = self._commands[name]
        self._spawn(name, argv, log)

    def check(self) -> None:
        for name, process in self.children.items():
            if process.poll() is not None:
                log = self.log(name)[-3000:] or "(no log file: its output is above)"
                raise RuntimeError(f"the {name} exited with {process.returncode}:\n{log}")

    def wait_healthy(self, timeout: float = 120.0) -> dict[str, Any]:
        """The /health answer once it says ok (and, with a worker, counts one)."""
        wanted = 1 if self.with_worker else 0
        token = self.params.get("auth_token")  # the workers are a detail: a key with 'read' sees them
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with contextlib.suppress(requests.RequestException, ValueError):
                health = requests.get(self.url + "/health", headers=headers, timeout=2).json()
                if health.get("status") == "ok" and health.get("workers", 0) >= wanted:
                    return health
            time.sleep(0.3)
        raise RuntimeError(f"the service did not become healthy within {timeout:.0f}s; see {self.logs}")

    def pool_pids(self) -> list[int]:
        """The worker's pool processes (children of its main process)."""
        worker = self.children.get("worker")
        return child_pids(worker.pid) if worker is not None else []

    def kill(self, name: str, grace: float = 0.0) -> None:
        """End one child's process group: at once, or after grace seconds for it to exit by itself
        (it has been asked to: stop() sent SIGTERM)."""
        process = self.children.get(name)
        if process is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop(self, timeout: float = 30.0) -> None:
        for process in self.children.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.children.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # anything the group left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        for f in self._files:
            f.close()
        self._files.clear()
