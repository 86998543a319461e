"""`make run` (stack.py) as a user runs it: it starts its own Redis and MongoDB when none answer,
loads the bank data, starts the worker and the web server, prints the quick start, and on SIGTERM
stops what it started and nothing else. Its Redis keeps models and job records across a restart."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import JOB, ROOT
from localservers import embedded
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect


class StackRun:
    def __init__(self, params_file: Path, log: Path):
        self.log = log
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URI", "PORT")}
        env["PARAMETERS_FILE"] = str(params_file)
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


@pytest.fixture()
def stack_config(tmp_path, bank_csv):
    small = tmp_path / "bank-small.csv"
    with open(bank_csv) as src:
        small.write_text("".join(line for _, line in zip(range(2001), src, strict=False)))
    params = {
        "port": embedded.free_port(),
        "redis_url": f"redis://127.0.0.1:{embedded.free_port()}/0",
        "mongodb_uri": f"mongodb://127.0.0.1:{embedded.free_port()}/",
        "var_dir": str(tmp_path / "var"),
        "bank_csv": str(small),
        "spark_master": "local[1]",
    }
    path = tmp_path / "parameters.json"
    path.write_text(json.dumps(params))
    return path, params


def _answers(params: dict) -> dict[str, bool]:
    return {
        "redis": embedded.redis_answers(params["redis_url"]),
        "mongo": embedded.mongo_answers(params["mongodb_uri"]),
        "web": embedded.port_taken("127.0.0.1", params["port"]),
    }


def test_make_run_brings_up_the_stack_and_takes_it_down(stack_config, tmp_path, redis_url):
    path, params = stack_config
    url = f"http://127.0.0.1:{params['port']}"
    first = StackRun(path, tmp_path / "first.log")
    try:
        out = first.wait_up()
        assert "Redis: started redis-server" in out and "AOF" in out
        assert "MongoDB: started" in out
        assert "datasets.bank: loaded 2000 documents" in out
        assert f"curl -s -X POST -H 'Content-Type: application/json' -d @job.json {url}/train/" in out
        health = requests.get(url + "/health", timeout=5).json()
        assert {k: health[k] for k in ("status", "redis", "mongo", "workers")} == {
            "status": "ok",
            "redis": "ok",
            "mongo": "ok",
            "workers": 1,
        }
        # A job record (it fails before any Spark work: no such label) and a model to keep.
        bad = {**JOB, "schema": {**JOB["schema"], "label": {"key": "absent"}}}
        job_id = requests.post(url + "/train/", json=bad, timeout=10).json()["job_id"]
        deadline = time.monotonic() + 60
        while requests.get(f"{url}/jobs/{job_id}", timeout=5).json()["status"] != "FAILED":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        models = ModelStore(connect(params["redis_url"], 1))
        models.save("kept-model", {"name": "LogisticRegressionWrapper", "numFeatures": 1})
        models.client.close()
    finally:
        assert first.terminate() == 0
    assert _answers(params) == {"redis": False, "mongo": False, "web": False}
    assert embedded.redis_answers(redis_url)  # what it did not start is left alone
    leftovers = [p for p in Path("/proc").glob("[0-9]*/environ") if _mentions(p, str(path))]
    assert leftovers == []

    second = StackRun(path, tmp_path / "second.log")
    try:
        out = second.wait_up()
        assert "datasets.bank: already loaded (2000 documents)" in out
        status = requests.get(f"{url}/jobs/{job_id}", timeout=5).json()
        assert status["status"] == "FAILED" and status["message"] == "label field 'absent' not found in datasets.bank"
        assert requests.get(f"{url}/models/kept-model", timeout=5).status_code == 200
    finally:
        assert second.terminate() == 0
    assert _answers(params) == {"redis": False, "mongo": False, "web": False}


def test_make_run_uses_servers_that_already_answer(stack_config, tmp_path, redis_url, mongo_uri):
    path, params = stack_config
    params = {**params, "redis_url": redis_url.rsplit("/", 1)[0] + "/5", "mongodb_uri": mongo_uri,
              "bank_csv": str(tmp_path / "none.csv")}  # fmt: skip
    path.write_text(json.dumps(params))
    run = StackRun(path, tmp_path / "reuse.log")
    try:
        out = run.wait_up()
        assert "(already running" in out and "started redis-server" not in out and "MongoDB: started" not in out
    finally:
        assert run.terminate() == 0
    assert embedded.redis_answers(redis_url) and embedded.mongo_answers(mongo_uri)


def _mentions(environ: Path, text: str) -> bool:
    try:
        return text.encode() in environ.read_bytes()
    except OSError:
        return False
