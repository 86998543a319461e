"""``make run``: the whole service on one machine, on embedded defaults.

* Redis: $REDIS_URL if set; else a Redis answering at ``redis_url`` (127.0.0.1:6379); else its own
  ``redis-server`` there, with AOF persistence and ``noeviction``, data under ``var/redis``.
* MongoDB: $MONGODB_URI if set; else one answering at ``mongodb_uri`` (127.0.0.1:27017); else
  ``mongod`` from PATH; else SecantusDB as a separate server process; data under ``var/mongo``.
* Loads the bank data into ``datasets.bank`` when that collection is empty and a CSV is found.
* Starts a Celery worker and the web server, waits until /health answers, prints the quick start.

Ctrl-C or SIGTERM stops everything this started, in reverse order, and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pymongo

from localservers import embedded
from localservers.serviceprocesses import ServiceProcesses
from predictionservice import datasetloader
from predictionservice.config import PROJECT_DIR, load_parameters, parameters_path
from predictionservice.defaults import BANK_DATASET

QUICK_START = """
The prediction service is up: {url}   (logs: {logs})

  curl -s {url}/health
  curl -s -X POST{auth} -H 'Content-Type: application/json' -d @job.json {url}/train/
  curl -s{auth} {url}/training/status/<job_id>
  curl -s -X POST{auth} -H 'Content-Type: application/json' \\
       -d '{{"modelkey": "<job_id>", "record": {record}}}' {url}/predict/
  curl -s -X POST{auth} -H 'Content-Type: application/json' \\
       -d '{{"modelkey": "<job_id>", "inputCollection": "datasets.bank", \\
            "outputCollection": "datasets.bankResults"}}' {url}/predictall/

Ctrl-C stops everything started here.
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


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


class Stack:
    def __init__(self, params: dict[str, Any], params_file: Path | None):
        self.params = params
        self.params_file = params_file
        self.var = Path(params["var_dir"])
        if not self.var.is_absolute():
            self.var = PROJECT_DIR / self.var
        self.logs = self.var / "log"
        self.servers: list[embedded.ServerProcess] = []
        self.service: ServiceProcesses | None = None

    # ------------------------------------------------------------------ dependencies

    def redis(self) -> str:
        if os.environ.get("REDIS_URL"):
            url = os.environ["REDIS_URL"]
            if not embedded.redis_answers(url, timeout=2):
                raise SystemExit(f"REDIS_URL={url} does not answer")
            say(f"Redis: {url} (REDIS_URL)")
            return url
        url = self.params["redis_url"]
        if embedded.redis_answers(url):
            say(f"Redis: {url} (already running; its persistence settings are its own)")
            return url
        host, port = embedded.host_port(url, 6379)
        server = embedded.start_redis(port, self.var / "redis", host=host, persistent=True)
        self.servers.append(server)
        say(f"Redis: started redis-server on {host}:{port} (AOF, noeviction, data in {self.var / 'redis'})")
        return url

    def mongo(self) -> str:
        if os.environ.get("MONGODB_URI"):
            uri = os.environ["MONGODB_URI"]
            if not embedded.mongo_answers(uri, timeout_ms=3000):
                raise SystemExit(f"MONGODB_URI={uri} does not answer")
            say("MongoDB: $MONGODB_URI")
            return uri
        uri = self.params["mongodb_uri"]
        if embedded.mongo_answers(uri):
            say(f"MongoDB: {uri} (already running)")
            return uri
        host, port = embedded.host_port(uri, 27017)
        server = embedded.start_mongo(port, self.var / "mongo", host=host)
        self.servers.append(server)
        say(f"MongoDB: started {server.name} on {host}:{port} (data in {self.var / 'mongo'})")
        return server.url

    def load_bank(self, uri: str) -> None:
        db, name = BANK_DATASET
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            collection = client[db][name]
            if collection.find_one({}, {"_id": 1}) is not None:
                say(f"{db}.{name}: already loaded ({collection.estimated_document_count()} documents)")
                return
            found = datasetloader.find_bank_csv(self.params["bank_csv"] or None)
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

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        redis_url = self.redis()
        mongo_uri = self.mongo()
        self.load_bank(mongo_uri)
        env = embedded.env_with(REDIS_URL=redis_url, MONGODB_URI=mongo_uri)
        self.service = ServiceProcesses(self.params, self.params_file, self.logs, env, web_log=False)
        say(f"starting a Celery worker (log: {self.logs / 'worker.log'}) and the web server")
        self.service.start()
        self.service.wait_healthy()
        headers = self.service.auth_headers()
        auth = f" -H '{next(iter(headers))}: {next(iter(headers.values()))}'" if headers else ""
        record = json.dumps(SAMPLE_RECORD)
        print(QUICK_START.format(url=self.service.url, logs=self.logs, auth=auth, record=record), flush=True)

    def check(self) -> None:
        if self.service is not None:
            self.service.check()

    def stop(self) -> None:
        if self.service is not None:
            say("stopping the web server and the worker")
            self.service.stop(timeout=20)
        for server in reversed(self.servers):
            say(f"stopping {server.name}")
            server.stop()


def main() -> int:
    found = parameters_path()
    params_file = found if found.exists() else None  # none: the built-in defaults
    params = load_parameters(params_file)
    stack = Stack(params, params_file)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        stack.start()
        while True:
            stack.check()
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    except (SystemExit, RuntimeError) as exc:
        print(f"[make run] {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
