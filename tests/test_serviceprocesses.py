"""serviceprocesses.py: the worker, the scheduler and the web server as child processes (the stack's
and the tests')."""

import json
import os
import time

import requests

from localservers import embedded
from localservers.serviceprocesses import ServiceProcesses
from predictionservice.defaults import SETTINGS


def test_without_a_parameters_file_the_web_server_runs_on_defaults_and_the_environment(
    tmp_path, base_params, redis_url, mongo_uri
):
    """What `make run` does when there is no parameters.json: nothing names a file to the children."""
    port = embedded.free_port()
    env = {k: v for k, v in os.environ.items() if k not in {s.env for s in SETTINGS.values()}}
    env |= {"REDIS_URL": redis_url, "MONGODB_URI": mongo_uri, "PORT": str(port), "PARAMETERS_FILE": "/nowhere.json"}
    processes = ServiceProcesses({**base_params, "port": port}, None, tmp_path / "logs", env, worker=False)
    try:
        processes.start()
        assert processes.wait_healthy(timeout=60)["status"] == "ok"
        assert processes.children["web"].args[1:] == ["modelserver.py"]
        assert "PARAMETERS_FILE" not in processes.env
    finally:
        processes.stop()


def test_with_beat_a_scheduler_starts_reports_in_health_and_stops_with_the_rest(tmp_path, base_params):
    """What `make run` starts besides the worker: the retraining scheduler (celery beat with
    redbeat), seen by /health once it ticks, ended by stop() like every other child. It runs on
    Redis databases of its own (16 in all: 14 and 15 are tests/test_flow_schedules.py's)."""
    from predictionservice.redisclient import with_db

    port = embedded.free_port()
    params = {**base_params, "port": port, "redis_url": with_db(base_params["redis_url"], 8), "models_db": 8}
    params_file = tmp_path / "parameters.json"
    params_file.write_text(json.dumps(params))
    processes = ServiceProcesses(params, params_file, tmp_path / "logs", worker=False, beat=True)
    try:
        processes.start()
        processes.wait_healthy(timeout=60)
        deadline = time.monotonic() + 60
        while (health := requests.get(processes.url + "/health", timeout=5).json())["scheduler"]["status"] != "running":
            assert time.monotonic() < deadline and not processes.exited(), processes.log("beat")[-2000:]
            time.sleep(0.3)
        assert health["scheduler"]["holder"].endswith(f":{processes.children['beat'].pid}")
    finally:
        processes.stop()
    assert processes.children["beat"].poll() is not None and "beat: Releasing lock" in processes.log("beat")
