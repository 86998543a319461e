"""serviceprocesses.py: the worker and web server as child processes (the stack's and the tests')."""

import os

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
