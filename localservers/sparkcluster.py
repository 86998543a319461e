"""A Spark standalone cluster from the project's own pyspark: a master and a worker, each a
separate JVM started with the wheel's ``bin/spark-class`` (the wheel has no start-master.sh).

    python -m localservers.sparkcluster --cores 2 --memory 2g      # prints spark://127.0.0.1:7077

The worker's folder holds the executors' working directories, so an executor runs outside the
project: it imports the library only from the zip the service ships it. ``stop()`` ends each
daemon's process group, executors included. On separate machines, run the same two commands
(``deploy/spark-master.service`` and ``deploy/spark-worker.service``) with --host set to the
machine's address.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from localservers.embedded import ServerProcess, _refuse_taken, free_port


def spark_home() -> Path:
    """The pyspark wheel's folder (found, not imported: this process needs no JVM)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyspark is not installed (make setup installs it)")
    return Path(spec.origin).resolve().parent


def spark_class(*args: str) -> list[str]:
    return [str(spark_home() / "bin" / "spark-class"), *args]


def _env(folder: Path, host: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP=host,
        SPARK_LOG_DIR=str(folder / "logs"),
        SPARK_WORKER_DIR=str(folder / "work"),
        PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
    )
    return env


@dataclass
class SparkCluster:
    master: ServerProcess
    worker: ServerProcess
    url: str  # spark://host:port, what spark_master takes
    ui: str  # the master's web UI; /json/ is its JSON API
    folder: Path

    def state(self) -> dict[str, Any]:
        """The master's JSON API: workers, active and completed applications."""
        return requests.get(self.ui + "/json/", timeout=5).json()

    def stop(self) -> None:
        self.worker.stop()
        self.master.stop()


def start_cluster(folder: Path, *, host: str = "127.0.0.1", cores: int = 2, memory: str = "2g",
                  port: int | None = None, timeout: float = 120.0) -> SparkCluster:  # fmt: skip
    """A master and one worker with ``cores`` and ``memory`` for executors, both answering."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    ui_port, worker_port, worker_ui = free_port(host), free_port(host), free_port(host)
    for p in (port, ui_port, worker_port, worker_ui):
        _refuse_taken(host, p, "the Spark cluster")
    env, url, ui = _env(folder, host), f"spark://{host}:{port}", f"http://{host}:{ui_port}"
    master = ServerProcess(
        "spark-master",
        spark_class("org.apache.spark.deploy.master.Master", "--host", host, "--port", str(port),
                    "--webui-port", str(ui_port)),
        url, folder / "master.log", cwd=folder, env=env,
    )  # fmt: skip
    cluster = None
    try:
        master.wait_until(lambda: _answers(ui), timeout)
        (folder / "work").mkdir(exist_ok=True)
        worker = ServerProcess(
            "spark-worker",
            spark_class("org.apache.spark.deploy.worker.Worker", "--host", host, "--port", str(worker_port),
                        "--webui-port", str(worker_ui), "--cores", str(cores), "--memory", memory,
                        "--work-dir", str(folder / "work"), url),
            url, folder / "worker.log", cwd=folder / "work", env=env,
        )  # fmt: skip
        cluster = SparkCluster(master, worker, url, ui, folder)
        worker.wait_until(lambda: _alive_workers(cluster) >= 1, timeout)
        return cluster
    except BaseException:
        if cluster is not None:
            cluster.stop()
        master.stop()
        raise


def _answers(ui: str) -> bool:
    try:
        return requests.get(ui + "/json/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _alive_workers(cluster: SparkCluster) -> int:
    try:
        return sum(1 for w in cluster.state().get("workers", []) if w.get("state") == "ALIVE")
    except (requests.RequestException, ValueError):
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7077)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory", default="2g")
    parser.add_argument("--dir", type=Path, default=Path("var") / "spark")
    args = parser.parse_args(argv)
    cluster = start_cluster(args.dir.resolve(), host=args.host, cores=args.cores, memory=args.memory, port=args.port)
    print(f"Spark master {cluster.url} (UI {cluster.ui}); set spark_master={cluster.url}. Ctrl-C stops it.", flush=True)
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    try:
        while not stop and cluster.master.running() and cluster.worker.running():
            time.sleep(0.5)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the stop short
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
