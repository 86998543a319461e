"""`make run` (stack.py) as a user runs it: its own Redis and MongoDB on ports of its own, never
servers that merely answer where the configuration points (another checkout's, the machine's);
an existing one only when REDIS_URL / MONGODB_URI names it; every port checked before anything
starts; one run per folder; SIGTERM, Ctrl-C and a double Ctrl-C in a real terminal (tmux) stop
what it started and nothing else. Its Redis keeps models and job records across a restart."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymongo
import pytest
import redis
import requests

from helpers import JOB, ROOT
from localservers import embedded
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect


class StackRun:
    def __init__(self, params_file: Path, log: Path, **env_changes: str):
        self.log = log
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URI", "PORT")}
        env["PARAMETERS_FILE"] = str(params_file)
        env.update(env_changes)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localservers.stack"],
            cwd=ROOT,
            env=env,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_up(self, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            if "The prediction service is up" in self.output():
                return self.output()
            time.sleep(0.3)
        raise AssertionError(self.output())

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(90)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A Redis that keeps nothing on disk and a MongoDB, both someone else's, where the
    configuration's redis_url and mongodb_uri point (as 6379 and 27017 were before)."""
    root = tmp_path_factory.mktemp("foreign")
    redis_server = embedded.start_redis(embedded.free_port(), root / "redis", persistent=False)
    mongo_server = embedded.start_mongo(embedded.free_port(), root / "mongo", use_mongod=False)
    yield redis_server.url, mongo_server.url
    redis_server.stop()
    mongo_server.stop()


@pytest.fixture()
def stack_config(tmp_path, bank_csv, foreign):
    small = tmp_path / "bank-small.csv"
    with open(bank_csv) as src:
        small.write_text("".join(line for _, line in zip(range(2001), src, strict=False)))
    params = {
        "port": embedded.free_port(),
        "redis_url": foreign[0],
        "mongodb_uri": foreign[1],
        "local_redis_port": embedded.free_port(),
        "local_mongo_port": embedded.free_port(),
        "var_dir": str(tmp_path / "var"),
        "bank_csv": str(small),
        "spark_master": "local[1]",
    }
    path = tmp_path / "parameters.json"
    path.write_text(json.dumps(params))
    return path, params


def own(params: dict) -> dict[str, str]:
    return {
        "redis": f"redis://127.0.0.1:{params['local_redis_port']}/0",
        "mongo": f"mongodb://127.0.0.1:{params['local_mongo_port']}/",
        "url": f"http://127.0.0.1:{params['port']}",
    }


def answers(params: dict) -> dict[str, bool]:
    return {
        "redis": embedded.redis_answers(own(params)["redis"]),
        "mongo": embedded.mongo_answers(own(params)["mongo"]),
        "web": embedded.port_taken("127.0.0.1", params["port"]),
    }


def foreign_untouched(foreign) -> None:
    client = redis.Redis.from_url(foreign[0].rsplit("/", 1)[0] + "/0")
    try:
        for db in range(16):
            client.execute_command("SELECT", db)
            assert client.dbsize() == 0, f"make run wrote to the foreign Redis (db {db})"
    finally:
        client.close()
    with pymongo.MongoClient(foreign[1], serverSelectionTimeoutMS=5000) as mongo:
        assert set(mongo.list_database_names()) <= {"admin", "local", "config"}


def leftovers(path: Path) -> list[Path]:
    return [p for p in Path("/proc").glob("[0-9]*/environ") if _mentions(p, str(path))]


def test_make_run_starts_its_own_servers_and_never_the_ones_that_answer(stack_config, tmp_path, foreign):
    path, params = stack_config
    url = own(params)["url"]
    first = StackRun(path, tmp_path / "first.log")
    try:
        out = first.wait_up()
        assert f"Redis: started redis-server on 127.0.0.1:{params['local_redis_port']}" in out and "AOF" in out
        assert f"MongoDB: started secantusdb on 127.0.0.1:{params['local_mongo_port']}" in out or "mongod" in out
        assert "datasets.bank: loaded 2000 documents" in out
        assert "job=$(curl -s -X POST -H 'Content-Type: application/json' -d @job.json" in out
        health = requests.get(url + "/health", timeout=5).json()
        assert {k: health[k] for k in ("status", "redis", "mongo", "workers")} == {
            "status": "ok",
            "redis": "ok",
            "mongo": "ok",
            "workers": 1,
        }
        # a second make run in the same folder refuses, and starts nothing
        second = StackRun(path, tmp_path / "second.log")
        assert second.process.wait(60) == 1
        assert f"another make run (pid {first.process.pid}) is running from {params['var_dir']}" in second.output()
        # A job record (it fails on the worker: one class only) and a model to keep.
        job = {**JOB, "schema": {"label": JOB["schema"]["label"], "features": [{"key": "age"}]}}
        with pymongo.MongoClient(own(params)["mongo"]) as client:
            client["datasets"]["one"].insert_many([{"age": i, "y": "no"} for i in range(5)])
        job_id = requests.post(url + "/train/", json={**job, "inputCollection": "datasets.one"}, timeout=10)
        job_id = job_id.json()["job_id"]
        deadline = time.monotonic() + 120
        while requests.get(f"{url}/jobs/{job_id}", timeout=5).json()["status"] != "FAILED":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        models = ModelStore(connect(own(params)["redis"], 1))
        models.save("kept-model", {"name": "LogisticRegressionWrapper", "num_features": 1})
        models.client.close()
    finally:
        assert first.terminate() == 0
    assert answers(params) == {"redis": False, "mongo": False, "web": False}
    foreign_untouched(foreign)
    assert embedded.redis_answers(foreign[0]) and embedded.mongo_answers(foreign[1])  # left alone
    assert leftovers(path) == []

    again = StackRun(path, tmp_path / "again.log")
    try:
        out = again.wait_up()
        assert "datasets.bank: already loaded (2000 documents)" in out
        status = requests.get(f"{url}/jobs/{job_id}", timeout=5).json()
        assert status["status"] == "FAILED" and "has only one class" in status["message"]
        assert requests.get(f"{url}/models/kept-model", timeout=5).status_code == 200
    finally:
        assert again.terminate() == 0
    assert answers(params) == {"redis": False, "mongo": False, "web": False}
    foreign_untouched(foreign)


def test_a_named_redis_and_mongodb_are_used_with_a_warning_when_redis_keeps_nothing(stack_config, tmp_path, foreign):
    path, params = stack_config
    named_redis = foreign[0].rsplit("/", 1)[0] + "/5"
    run = StackRun(path, tmp_path / "named.log", REDIS_URL=named_redis, MONGODB_URI=foreign[1])
    try:
        out = run.wait_up()
        assert f"Redis: {named_redis} (REDIS_URL)" in out and "MongoDB: $MONGODB_URI" in out
        assert "warning: this Redis does not persist (appendonly no, save '')" in out
        assert "started redis-server" not in out and "MongoDB: started" not in out
        assert not embedded.port_taken("127.0.0.1", params["local_redis_port"])
    finally:
        assert run.terminate() == 0
    assert embedded.redis_answers(foreign[0]) and embedded.mongo_answers(foreign[1])
    client = redis.Redis.from_url(named_redis)
    client.flushdb()  # what this run queued and recorded there
    client.close()
    with pymongo.MongoClient(foreign[1]) as mongo:
        mongo.drop_database("datasets")


def test_a_taken_port_is_named_with_its_holder_before_anything_starts(stack_config, tmp_path):
    path, params = stack_config
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", params["port"]))
        squatter.listen()
        run = StackRun(path, tmp_path / "taken.log")
        assert run.process.wait(60) == 1
    out = run.output()
    assert f"port {params['port']} (the web server) is taken by pid {os.getpid()} (" in out
    assert "stop it or set PORT=<another port>" in out
    assert "Redis: started" not in out and "The prediction service is up" not in out
    assert answers(params) == {"redis": False, "mongo": False, "web": False}


def test_a_double_ctrl_c_in_a_terminal_leaves_nothing_running(stack_config, tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (make system installs it: apt-get install tmux)")
    path, params = stack_config
    session = f"stack-{os.getpid()}-{params['port']}"
    log = tmp_path / "tmux.log"
    # output to a file, not through a pipe: Ctrl-C reaches the whole foreground group, a tee too
    command = f"cd {ROOT} && PARAMETERS_FILE={path} exec {sys.executable} -m localservers.stack > {log} 2>&1"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URI", "PORT", "TMUX")}
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", command], env=env, check=True)
    try:
        deadline = time.monotonic() + 180
        while "The prediction service is up" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no output"
            time.sleep(0.3)
        assert all(answers(params).values())
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        while "stopping the web server" not in log.read_text():
            assert time.monotonic() < deadline + 60, log.read_text()
            time.sleep(0.05)
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline + 120, log.read_text()
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert answers(params) == {"redis": False, "mongo": False, "web": False}, log.read_text()
    assert leftovers(path) == [], log.read_text()
    # the second Ctrl-C came while the worker was still shutting down (seconds, against the
    # milliseconds from the first line of the stop to the second key)
    assert "second signal: hurrying the stop" in log.read_text()


def _mentions(environ: Path, text: str) -> bool:
    try:
        return text.encode() in environ.read_bytes()
    except OSError:
        return False


def _worker_group(path: Path) -> int:
    """The process group of the Celery worker of the run with parameters file path: its main
    process leads it, its pool processes share its command line. /proc lists processes by pid, and
    pids wrap (pid_max is 32768 here), so a pool process may come first: only the leader counts."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            command, pid = cmdline.read_bytes(), int(cmdline.parent.name)
            if b"celery\0" in command and b"\0worker\0" in command and _mentions(cmdline.parent / "environ", str(path)):
                if os.getpgid(pid) == pid:
                    return pid
    raise AssertionError(f"no Celery worker of {path} leads a process group")


def test_a_dead_worker_is_started_again_and_sigterm_mid_training_leaves_nothing(stack_config, tmp_path):
    """Issue 11, findings 20 and 21: make run starts a worker that died again; SIGTERM while a
    job trains stops everything within the bound, the worker's pool and Spark JVM included."""
    path, params = stack_config
    url = own(params)["url"]
    run = StackRun(path, tmp_path / "run.log")
    try:
        run.wait_up()
        os.killpg(_worker_group(path), signal.SIGKILL)
        deadline = time.monotonic() + 120
        while "the worker exited with -9; starting it again" not in run.output():
            assert time.monotonic() < deadline and run.process.poll() is None, run.output()
            time.sleep(0.3)
        while requests.get(url + "/health", timeout=5).json()["workers"] < 1:
            assert time.monotonic() < deadline, run.output()
            time.sleep(0.5)
        job_id = requests.post(url + "/train/", json=JOB, timeout=10).json()["job_id"]
        while "fitting" not in requests.get(f"{url}/jobs/{job_id}", timeout=5).json()["message"]:
            assert time.monotonic() < deadline, requests.get(f"{url}/jobs/{job_id}", timeout=5).json()
            time.sleep(0.3)
    finally:
        started = time.monotonic()
        assert run.terminate() == 0, run.output()
    assert time.monotonic() - started < 60, "stopping mid-training took too long"
    assert answers(params) == {"redis": False, "mongo": False, "web": False}
    assert leftovers(path) == [], run.output()


def test_make_run_turns_the_prediction_log_on_unless_told(tmp_path):
    """make run's own defaults (MAKE_RUN_SETTINGS): the prediction log on, unless the environment
    or the parameters file says otherwise (the library's default stays off)."""
    from localservers.stack import Stack
    from predictionservice.config import load_parameters

    params = load_parameters(environ={})
    assert params["prediction_log"] is False
    assert Stack(params, None, environ={}).run_defaults() == {"PREDICTION_LOG": "true"}
    assert Stack(params, None, environ={"PREDICTION_LOG": "0"}).run_defaults() == {}
    chosen = tmp_path / "parameters.json"
    chosen.write_text(json.dumps({"prediction_log": False}))
    assert Stack(params, chosen, environ={}).run_defaults() == {}
