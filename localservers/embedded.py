"""Starting and stopping the local servers the service can run on: redis-server and MongoDB.

``make run`` uses these when nothing answers on the usual ports, and the tests use them for their
private servers, so both run the very same configuration. MongoDB is ``mongod`` when one is on
PATH, else SecantusDB (a MongoDB wire-protocol server) run as a separate process; the service
itself only ever speaks pymongo to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

import pymongo
import redis


def child_pids(parent: int, *, running_only: bool = False) -> list[int]:
    """The processes whose parent is ``parent``, from /proc (zombies too, unless running_only)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and not (running_only and fields[0] == "Z"):
                found.append(int(stat.parent.name))
    return sorted(found)


def group_members(pgid: int, *, command: str = "") -> list[int]:
    """The processes of a process group, from /proc; with command, only those whose command line
    holds it (the Spark JVM of a worker's group: "java")."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            if command.encode() in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
    return sorted(found)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def port_holder(port: int) -> str:
    """Who listens on a TCP port, as a person would want to be told: 'pid 123 (redis-server
    127.0.0.1:6390)', from /proc (the socket's inode, then the process holding it); a process
    this user cannot see is named as such."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return "a process that is not listening any more"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        pid = fd_dir.parent.name
                        command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        return f"pid {pid} ({command.strip()[:120]})"
    return "a process of another user (not visible from here)"


def _refuse_taken(host: str, port: int, name: str) -> None:
    """Starting on a taken port would find the other server answering and mistake it for ours."""
    if port_taken(host, port):
        raise RuntimeError(f"cannot start {name} on {host}:{port}: something already listens there")


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def mongo_answers(uri: str, timeout_ms: int = 500) -> bool:
    client: pymongo.MongoClient = pymongo.MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False
    finally:
        client.close()


class ServerProcess:
    """A child server process with a URL; ``stop()`` ends it (TERM, then KILL) and only it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        url: str,
        log_path: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        on_spawn: Callable[[int], None] | None = None,
    ):
        self.name = name
        self.url = url
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, "ab")
        self.process = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True
        )
        if on_spawn is not None:  # told the process group at once, before the wait for it to answer
            on_spawn(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_until(self, ready, timeout: float) -> None:
        """Wait for ready(); on any failure (time-out, exit, Ctrl-C) the server is stopped."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.running():
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
                if ready():
                    return
                time.sleep(0.1)
            raise RuntimeError(f"{self.name} did not answer within {timeout:.0f}s; see {self.log_path}")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """TERM the server's process group (it runs in a session of its own), KILL what stays."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(
    port: int,
    data_dir: Path,
    *,
    persistent: bool = True,
    host: str = "127.0.0.1",
    timeout: float = 20.0,
    on_spawn: Callable[[int], None] | None = None,
) -> ServerProcess:
    """redis-server on host:port. Persistent means AOF with fsync every second and noeviction,
    so models and job records survive a restart and are never silently dropped for memory."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (make run installs it: apt-get install redis-server)")
    _refuse_taken(host, port, "redis-server")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        exe,
        "--bind",
        host,
        "--port",
        str(port),
        "--dir",
        str(data_dir.resolve()),
        "--maxmemory-policy",
        "noeviction",
        "--save",
        "",
        "--daemonize",
        "no",
    ]
    if persistent:
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
    else:
        argv += ["--appendonly", "no"]
    url = f"redis://{host}:{port}/0"
    server = ServerProcess("redis-server", argv, url, data_dir / "redis.log", on_spawn=on_spawn)
    server.wait_until(lambda: redis_answers(url), timeout)
    return server


def secantus_command() -> list[str]:
    """How to start SecantusDB: its console script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("secantusd-py")
    return [str(script)] if script.exists() else [sys.executable, "-m", "secantus"]


def start_mongo(
    port: int,
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    use_mongod: bool = True,
    cache_size: str = "512M",
    timeout: float = 60.0,
    on_spawn: Callable[[int], None] | None = None,
) -> ServerProcess:
    """mongod from PATH when there is one (and use_mongod), else a SecantusDB server process."""
    _refuse_taken(host, port, "MongoDB")
    data_dir.mkdir(parents=True, exist_ok=True)
    mongod = shutil.which("mongod") if use_mongod else None
    if mongod:
        db_path = data_dir / "mongod"
        db_path.mkdir(exist_ok=True)
        argv = [mongod, "--bind_ip", host, "--port", str(port), "--dbpath", str(db_path.resolve())]
        name = "mongod"
    else:
        argv = [
            *secantus_command(),
            "--host",
            host,
            "--port",
            str(port),
            "--storage-path",
            str((data_dir / "secantus").resolve()),
            "--standalone",
            "--log-level",
            "WARNING",
            "--cache-size",
            cache_size,
        ]
        name = "secantusdb"
    uri = f"mongodb://{host}:{port}/"
    server = ServerProcess(name, argv, uri, data_dir / f"{name}.log", on_spawn=on_spawn)
    server.wait_until(lambda: mongo_answers(uri), timeout)
    return server


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def env_with(**values: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(values)
    return env
