"""pyproject.toml: `pip install .` into a fresh virtualenv, without extras, gives a working service.

The project (a copy of the checkout, so the build leaves nothing in it) is installed with pip's
cache and the runtime lock as constraints (the versions deploy/ installs); then, from a folder that
is not the checkout, the console scripts start a web server and a worker on the session's Redis and
MongoDB: /health shows the version and the worker, the pages' templates and files are there, the
worker trains a small forest that the server scores, and pip lists no test, browser, notebook,
linter or manual package among what it pulled."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid

import pytest
import requests

from helpers import EXAMPLES, ROOT, XOR_JOB
from localservers import embedded
from predictionservice.version import __version__

pytestmark = pytest.mark.system

# None of these may come with `pip install .`: the tests', the browser's, the notebook's, the
# linter's, the benchmarks' and the manual's (pyproject.toml's extras).
NOT_RUNTIME = ("pytest", "selenium", "schemathesis", "nbclient", "ipykernel", "jupyter", "ruff", "scikit-learn",
               "matplotlib", "mkdocs", "py-spy", "tritonclient", "secantusdb")  # fmt: skip
SCRIPTS = ("prediction-server", "prediction-worker", "prediction-stack", "prediction-client")
LEFT_OUT = (".git", ".venv", "var", "data", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtualenv with `pip install -c requirements.txt .` (no extras); (venv, seconds)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFT_OUT))
    venv = work / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # --no-compile: what it pulls is the same, without byte-compiling pyspark's thousands of files
    # (90 s to 30 s here); the processes compile what they import as they import it.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "-c", str(ROOT / "requirements.txt"), str(source)], capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv, time.monotonic() - started


def test_the_project_declares_its_version_in_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "predictionservice.version.__version__"}
    assert set(project["project"]["scripts"]) == set(SCRIPTS)


def test_the_runtime_lock_pins_every_range_and_no_development_package():
    """requirements.txt holds the runtime closure only, and a pin inside each declared range;
    requirements-dev.txt adds the rest on top of it."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def pins(name):
        lines = (ROOT / name).read_text().splitlines()
        return {canonicalize_name(Requirement(line).name): line.split("==")[1] for line in lines if "==" in line}

    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert (ROOT / "requirements-dev.txt").read_text().count("-r requirements.txt") == 1
    assert not set(runtime) & set(dev), set(runtime) & set(dev)
    assert not [name for name in runtime if name.startswith(NOT_RUNTIME)]
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        assert requirement.specifier.contains(runtime[canonicalize_name(requirement.name)]), line


def listed(venv) -> dict[str, str]:
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"], check=True,
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def test_pip_install_pulls_no_test_browser_or_notebook_package(installed):
    venv, seconds = installed
    print(f"pip install -c requirements.txt . into a fresh venv: {seconds:.0f} s")
    packages = listed(venv)
    assert packages["prediction-service"] == __version__
    assert not [name for name in packages if name.startswith(NOT_RUNTIME)], sorted(packages)
    check = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_every_console_script_tells_the_version(installed, tmp_path):
    venv, _ = installed
    for script in SCRIPTS:
        out = subprocess.run([str(venv / "bin" / script), "--version"], cwd=tmp_path, env=outside(venv),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0 and out.stdout.split() == [script, __version__], (script, out.stderr)


def outside(venv) -> dict[str, str]:
    """An environment that finds nothing of the checkout: no PYTHONPATH, the venv first on PATH."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "JAVA_HOME", "JDK_JAVA_OPTIONS", "TMPDIR")}
    return {**keep, "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"}


@pytest.fixture(scope="module")
def running(installed, tmp_path_factory, base_params):
    """The installed console scripts, a web server and a worker, started from a folder that is not
    the checkout, on the session's Redis and MongoDB and a queue of their own, their settings in
    that folder's parameters.json; (url, the worker's name)."""
    venv, _ = installed
    folder = tmp_path_factory.mktemp("installed-service")
    port, worker = embedded.free_port(), f"installed-{uuid.uuid4().hex[:6]}@%h"
    settings = {key: base_params[key] for key in ("redis_url", "mongodb_uri", "spark_master",
                                                    "spark_shuffle_partitions", "spark_driver_memory")}  # fmt: skip
    settings |= {"port": port, "queue_name": f"installed-{uuid.uuid4().hex[:6]}"}
    (folder / "parameters.json").write_text(json.dumps(settings))
    logs, started = {}, []
    for name, argv in (("worker", ["prediction-worker", "-n", worker, "--without-mingle", "--without-gossip"]),
                       ("web", ["prediction-server"])):  # fmt: skip
        logs[name] = open(folder / f"{name}.log", "wb")
        command = [str(venv / "bin" / argv[0]), *argv[1:]]
        started.append(subprocess.Popen(command, cwd=folder, env=outside(venv), stdout=logs[name],
                                        stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_worker(url, worker, started, folder)
        yield url, worker
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for log in logs.values():
            log.close()


def test_the_installed_server_and_worker_run_from_another_folder(installed, running, tmp_path):
    """/health shows the version and names the worker, /v2 the version; the pages' templates and
    files and Swagger UI's are served; the modules are the venv's, not the checkout's."""
    venv, _ = installed
    url, worker = running
    health = requests.get(url + "/health", timeout=10).json()
    assert health["version"] == __version__ and health["redis"] == health["mongo"] == "ok", health
    assert worker.replace("%h", os.uname().nodename) in health["worker_names"], health
    assert requests.get(url + "/v2", timeout=10).json()["version"] == __version__
    assert "<form" in requests.get(url + "/ui/train", timeout=30).text  # templates
    assert requests.get(url + "/ui/static/ui.css", timeout=10).status_code == 200
    assert requests.get(url + "/docs/swagger-ui.css", timeout=10).status_code == 200
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import modelserver; print(modelserver.__file__)"],
                          cwd=tmp_path, env=outside(venv), capture_output=True, text=True).stdout  # fmt: skip
    assert site.startswith(str(venv)), site


def test_the_installed_worker_trains_and_the_server_scores_its_model(running):
    """A small forest (examples/xor.csv) trained by the installed worker's Spark, with the library
    shipped to it from site-packages, and scored by the installed server."""
    url, _ = running
    collection = f"installed_xor_{uuid.uuid4().hex[:6]}"
    with open(EXAMPLES / "xor.csv", "rb") as body:
        loaded = requests.put(f"{url}/datasets/datasets/{collection}", data=body, timeout=120,
                              headers={"Content-Type": "text/csv"})  # fmt: skip
    assert loaded.status_code == 200, loaded.text
    try:
        small = {**XOR_JOB, "inputCollection": f"datasets.{collection}", "numFolds": 2}
        job = requests.post(url + "/train/", json=small, timeout=60)
        assert job.status_code == 202, job.text
        deadline, status = time.monotonic() + 300, {}
        while time.monotonic() < deadline and status.get("status") not in ("COMPLETED", "FAILED"):
            time.sleep(0.5)
            status = requests.get(f"{url}/jobs/{job.json()['job_id']}", timeout=30).json()
        assert status["status"] == "COMPLETED", status
        record = {"x1": 1.0, "x2": -1.0, "c": "a"}
        answer = requests.post(url + "/predict/", json={"modelkey": status["model_key"], "record": record}, timeout=30)
        assert answer.status_code == 200 and answer.json()["label"] == "yes", answer.text
    finally:
        requests.delete(f"{url}/datasets/datasets/{collection}", timeout=60)


def wait_for_worker(url, worker, started, folder) -> dict:
    """/health once it names the worker (it pings the workers in the background)."""
    name = worker.replace("%h", os.uname().nodename)
    deadline = time.monotonic() + 120
    while True:
        logs = "\n".join(path.read_text()[-2000:] for path in folder.glob("*.log"))
        assert all(p.poll() is None for p in started) and time.monotonic() < deadline, logs
        try:
            health = requests.get(url + "/health", timeout=5).json()
            if name in health.get("worker_names", []):
                return health
        except requests.RequestException:
            pass
        time.sleep(0.5)
