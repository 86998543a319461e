"""What ``make run`` starts cannot outlive it, even when the stack itself is SIGKILLed.

``localservers.stack`` starts this watchdog before any server, in a session of its own (a signal
to make's process group does not reach it) with every stopping signal ignored, and keeps the write
end of a pipe to its stdin. Each server it starts runs in a process group of its own, with its own
children (the worker's pool processes, its Spark JVM), and as it starts one it writes a line:
``service <pgid>`` (the web server, the worker), ``server <pgid>`` (Redis, MongoDB) or ``forget
<pgid>`` (a group it has stopped itself). When the pipe closes, because the stack exited however
it ended, the watchdog stops what is left as the stack's own stop would: the service groups first
(SIGTERM, so a worker stops cleanly while Redis still runs; SIGKILL after SERVICE_GRACE), then the
servers newest first; last, it SIGKILLs any process that still carries the run's id in its
environment: one started a moment before the stack died, before it was written down, or one that
left its group (PySpark's Python daemon, a grandchild of the worker, makes a group of its own).
The stack closes the pipe at the end of its own stop too, so that last sweep runs every time.

Why not the parent-death signal (``PR_SET_PDEATHSIG``) on each server: it reaches only the direct
child, not the pool processes and the JVM in its group, and it would stop Redis at the same instant
as the worker, which needs Redis to hand its job back.

Standard library only and run with ``python -I``: it starts in milliseconds and imports nothing of
the project.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

RUN_ID_VARIABLE = "MAKE_RUN_ID"  # in the environment of every process a make run starts
SERVICE_GRACE = 20.0  # seconds the web server and the worker get to stop (the stack's own bound)
SERVER_GRACE = 15.0  # seconds Redis and MongoDB get to stop
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE)


def members(pgid: int) -> list[int]:
    """The live processes of a process group (zombies are dead, only not yet reaped), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(stat.parent.name))
    return found


def carriers(run_id: str, spare: Iterable[int]) -> list[int]:
    """The processes whose environment holds this run's id, but those in spare."""
    needle = f"{RUN_ID_VARIABLE}={run_id}\0".encode()
    spared = set(spare)
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        with contextlib.suppress(OSError):
            if pid not in spared and needle in environ.read_bytes() + b"\0":
                found.append(pid)
    return found


def stop_groups(pgids: list[int], grace: float) -> list[int]:
    """SIGTERM each group, wait up to grace seconds for all to end, SIGKILL what stays; the
    groups that had a live process."""
    alive = [pgid for pgid in pgids if members(pgid)]
    for pgid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(members(pgid) for pgid in alive):
        time.sleep(0.1)
    for pgid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return alive


def stop_all(services: list[int], servers: list[int], run_id: str, spare: Iterable[int]) -> list[str]:
    """The stack's stop, done for it: what it did, one line each."""
    done = []
    if stop_groups(services, SERVICE_GRACE):
        done.append(f"stopped the web server and the worker (process groups {services})")
    for pgid in reversed(servers):
        if stop_groups([pgid], SERVER_GRACE):
            done.append(f"stopped the server in process group {pgid}")
    strays = carriers(run_id, spare) if run_id else []
    for pid in strays:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if strays:
        done.append(f"killed processes {strays} of this run outside those groups")
    return done


def watch(lines: Iterable[bytes], run_id: str, spare: Iterable[int]) -> list[str]:
    """Follow the stack's registrations until its pipe closes, then stop what is left."""
    services: list[int] = []
    servers: list[int] = []
    for line in lines:
        kind, _, pgid = line.decode().strip().partition(" ")
        if not pgid.isdigit():
            continue
        if kind == "service":
            services.append(int(pgid))
        elif kind == "server":
            servers.append(int(pgid))
        elif kind == "forget":
            services = [p for p in services if p != int(pgid)]
            servers = [p for p in servers if p != int(pgid)]
    return stop_all(services, servers, run_id, spare)


class Watchdog:
    """The stack's side: start the watchdog, tell it each process group, close when stopped."""

    def __init__(self, run_id: str, log: Path, env: dict[str, str] | None = None):
        self._log = open(log, "ab")  # closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve()), run_id, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a signal to make's process group does not reach it
        )
        self._pipe: IO[bytes] | None = self.process.stdin

    def _tell(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.write(line.encode() + b"\n")
            self._pipe.flush()
        except OSError:  # the watchdog is gone: the stack's own stop still runs
            self._pipe = None

    def service(self, pgid: int) -> None:
        self._tell(f"service {pgid}")

    def server(self, pgid: int) -> None:
        self._tell(f"server {pgid}")

    def forget(self, pgid: int) -> None:
        self._tell(f"forget {pgid}")

    def close(self, timeout: float = 60.0) -> None:
        """Close the pipe (the watchdog then stops anything still there) and wait for it."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self._log.close()


def main(argv: list[str]) -> int:
    run_id, stack_pid = argv[1], int(argv[2])
    for signum in STOPPING_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    done = watch(sys.stdin.buffer, run_id, spare=(os.getpid(), stack_pid))
    for line in done:
        print(f"[watchdog] {time.strftime('%Y-%m-%d %H:%M:%S')} left when the stack ended: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
