"""Issue 25, section 1: `make run` stopped mid-training, every way a user or a script stops it,
leaves nothing running within 30 s, the next `make run` starts, and the interrupted job is handed
back with its attempts unchanged and completes.

One sequence, in file order, on one configuration: each scenario starts `make -C <checkout> run`
in a process group of its own (as a script, a supervisor or systemd starts it), waits until the
chain's one training job fits (submitted by the first scenario; in every later one, the job the
stop before handed back, run again by this run's worker with its attempts unchanged), stops make
run its way, and then checks /proc for anything of the run (a process whose environment names its
parameters file, or whose command line names its var_dir or one of its ports). The next
scenario's start is the proof that the next `make run` starts (a server left behind holds a port,
and make run refuses); the last start lets the job complete, still on its first attempt."""

import contextlib
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

NOTHING_LEFT_WITHIN = 30.0  # seconds after the last signal


class Chain:
    """The sequence's configuration and what the scenarios hand on."""

    def __init__(self, root: Path, bank_csv: Path):
        small = root / "bank-small.csv"
        with open(bank_csv) as src:
            small.write_text("".join(line for _, line in zip(range(2001), src, strict=False)))
        self.params = {
            "port": embedded.free_port(),
            "local_redis_port": embedded.free_port(),
            "local_mongo_port": embedded.free_port(),
            "var_dir": str(root / "var"),
            "bank_csv": str(small),
            "spark_master": "local[1]",
        }
        self.params_dir = root / "parameters"
        self.params_dir.mkdir()
        self.root = root
        self.url = f"http://127.0.0.1:{self.params['port']}"
        self.job_id: str | None = None  # the one training job every scenario interrupts
        self.seen_fitting_at: str | None = None  # its last step when the last scenario stopped it

    def env(self, name: str) -> dict[str, str]:
        """make run's environment, a parameters file of the scenario's own (the sweep of remaining()
        finds its processes by it)."""
        params_file = self.params_dir / f"{name}.json"
        params_file.write_text(json.dumps(self.params))
        unset = ("REDIS_URL", "MONGODB_URI", "PORT", "BANK_CSV", "MAKEFLAGS")  # the parameters file decides
        env = {k: v for k, v in os.environ.items() if k not in unset}
        env["PARAMETERS_FILE"] = str(params_file)
        return env

    def remaining(self) -> list[str]:
        """Every live process of these runs: its environment names a parameters file of theirs, or
        its command line names the var_dir or one of the ports (or it listens on one of them)."""
        ports = [self.params[k] for k in ("port", "local_redis_port", "local_mongo_port")]
        # redis-server rewrites its command line (and environment) into "redis-server 127.0.0.1:<port>"
        marks = [f"--port\0{port}\0".encode() for port in ports] + [f"127.0.0.1:{port}".encode() for port in ports]
        marks.append(self.params["var_dir"].encode())
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if proc.name == str(os.getpid()) or (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
                cmdline = (proc / "cmdline").read_bytes()
                environ = (proc / "environ").read_bytes()
            except (OSError, IndexError):
                continue
            if str(self.params_dir).encode() in environ or any(mark in cmdline for mark in marks):
                command = cmdline.replace(b"\0", b" ").decode(errors="replace")[:150]
                found.append(f"{proc.name}: {command}")
        for port in ports:
            holder = embedded.port_holder(port)  # 'pid 123 (command)' when anything listens there
            if holder.startswith("pid ") and not any(line.startswith(holder[4:].split()[0] + ":") for line in found):
                found.append(f"{holder[4:].split()[0]}: {holder}")
        return found

    def clear(self) -> None:
        """Kill what a failed scenario left (their groups too), so the next one tests its own stop."""
        for line in self.remaining():
            pid = int(line.split(":")[0])
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.remaining() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, bank_csv):
    chain = Chain(tmp_path_factory.mktemp("stack-signals"), bank_csv)
    yield chain
    chain.clear()


class MakeRun:
    """`make -C <checkout> run`, the leader of a process group of its own; output to a log file,
    or (tee) through a pipe to a `tee` that the test can make go away."""

    def __init__(self, chain: Chain, name: str, *, tee: bool = False):
        self.log = chain.root / f"{name}.log"
        env = chain.env(name)
        self.tee: subprocess.Popen | None = None
        argv = ["make", "-C", str(ROOT), "run"]
        if tee:
            read, write = os.pipe()
            self.tee = subprocess.Popen(["tee", str(self.log)], stdin=read, stdout=subprocess.DEVNULL)
            self.process = subprocess.Popen(argv, env=env, stdout=write, stderr=write, start_new_session=True)
            os.close(read)
            os.close(write)
        else:
            with open(self.log, "w") as out:
                self.process = subprocess.Popen(
                    argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stack_pid(self) -> int:
        """The make recipe's process: python -m localservers.stack."""
        for pid in embedded.child_pids(self.pid, running_only=True):
            if b"localservers.stack" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        raise AssertionError(f"no localservers.stack under make (pid {self.pid})")


class BackgroundMakeRun(MakeRun):
    """`setsid nohup make run &` from a script: the non-interactive shell starts the job with
    SIGINT ignored (and nohup ignores SIGHUP); make is not the test's child."""

    def __init__(self, chain: Chain, name: str):
        self.log = chain.root / f"{name}.log"
        self.tee = None
        script = f'setsid nohup make -C "{ROOT}" run > "{self.log}" 2>&1 & echo $!'
        started = subprocess.run(["sh", "-c", script], env=chain.env(name), capture_output=True, text=True, check=True)
        self.pid = int(started.stdout.strip())
        self.process = None

    def running(self) -> bool:
        try:
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False


def start(run: MakeRun) -> None:
    """Wait until make run is up; this is also the proof that the previous scenario let it start."""
    deadline = time.monotonic() + 240
    while "The prediction service is up" not in run.output():
        assert run.running() and time.monotonic() < deadline, run.output()
        time.sleep(0.3)


GIVEN_BACK = "the worker running it was stopped"  # the job's message when a stop hands it back


def train_until_fitting(chain: Chain) -> str:
    """The chain's one training job, fitting. The first scenario submits it; each later one waits
    until the stop before it has handed the job back and this run's worker runs it again, and
    holds that no stop used up an attempt: a clean stop is no failure of the job."""
    if chain.job_id is None:
        chain.job_id = requests.post(chain.url + "/train/", json=JOB, timeout=10).json()["job_id"]
    deadline = time.monotonic() + 240
    while True:
        status = job_since_the_last_stop(chain)
        if "fitting" in status["message"] and (chain.seen_fitting_at is None or status["given_back"]):
            assert status["attempts"] == 1, status
            chain.seen_fitting_at = status["history"][-1]["updated_at"]
            return chain.job_id
        assert status["status"] not in ("COMPLETED", "FAILED") and time.monotonic() < deadline, status
        time.sleep(0.2)


def job_since_the_last_stop(chain: Chain) -> dict:
    """The job's status with its history, and given_back: the steps since the last scenario saw it
    fitting that say a stop handed it back."""
    status = requests.get(f"{chain.url}/jobs/{chain.job_id}?history=1", timeout=10).json()
    since = [step for step in status["history"] if step["updated_at"] > (chain.seen_fitting_at or "")]
    status["given_back"] = [step for step in since if GIVEN_BACK in step["message"]]
    return status


def stack_first(chain: Chain, name: str, **kwargs) -> MakeRun:
    chain.clear()  # nothing, unless the scenario before failed
    run = MakeRun(chain, name, **kwargs)
    start(run)
    return run


def assert_nothing_left(chain: Chain, run: MakeRun) -> None:
    deadline = time.monotonic() + NOTHING_LEFT_WITHIN
    while (chain.remaining() or run.running()) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = chain.remaining()
    assert left == [], f"{NOTHING_LEFT_WITHIN:.0f} s after the stop:\n" + "\n".join(left) + "\n" + run.output()[-3000:]
    assert not run.running()
    assert not any(embedded.port_taken("127.0.0.1", chain.params[k]) for k in ("port", "local_redis_port"))


WATCHED_STACK = """
import os, subprocess, sys, time
from pathlib import Path
from localservers.watchdog import RUN_ID_VARIABLE, Watchdog
os.environ[RUN_ID_VARIABLE] = run_id = sys.argv[1]
guard = Watchdog(run_id, Path(sys.argv[2]), dict(os.environ))
server = subprocess.Popen(["sleep", "300"], start_new_session=True)
guard.server(server.pid)
# a service whose group holds a child, and a grandchild that leaves for a session of its own
service = subprocess.Popen(["sh", "-c", "sleep 300 & setsid sleep 300 & wait"], start_new_session=True)
guard.service(service.pid)
print("up", flush=True)
time.sleep(300)
"""


def marked(run_id: str) -> list[int]:
    needle = f"MAKE_RUN_ID={run_id}\0".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if needle in environ.read_bytes():
                found.append(int(environ.parent.name))
    return found


def test_the_watchdog_stops_what_a_sigkilled_stack_started_even_a_process_that_left_its_group(tmp_path):
    """The watchdog alone, in seconds: a stand-in stack registers a server and a service group,
    then is SIGKILLed; the groups are stopped and the grandchild in a session of its own (as
    PySpark's daemon makes one) is found by the run's id."""
    run_id = f"watchdog-test-{os.getpid()}"
    log = tmp_path / "watchdog.log"
    stack = subprocess.Popen(
        [sys.executable, "-c", WATCHED_STACK, run_id, str(log)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert stack.stdout.readline() == "up\n"
        deadline = time.monotonic() + 10
        while len(marked(run_id)) < 5:  # the watchdog, the server, sh and its two sleeps
            assert time.monotonic() < deadline, marked(run_id)
            time.sleep(0.05)
    finally:
        stack.kill()
        stack.wait()
    deadline = time.monotonic() + NOTHING_LEFT_WITHIN
    while marked(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = marked(run_id)
    for pid in left:  # a failure leaves nothing running either
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == []
    assert "killed processes [" in log.read_text() and "of this run outside those groups" in log.read_text()


def test_sigterm_to_make_s_process_group_mid_training(chain):
    """systemd, supervisors and scripts: make forwards SIGTERM, so the stack gets two at once."""
    run = stack_first(chain, "group-term")
    train_until_fitting(chain)
    os.killpg(run.pid, signal.SIGTERM)
    assert_nothing_left(chain, run)
    assert "second signal" not in run.output()  # make's forwarded copy is the same request


def test_sigterm_to_make_only_mid_training(chain):
    run = stack_first(chain, "make-term")
    train_until_fitting(chain)
    os.kill(run.pid, signal.SIGTERM)
    assert_nothing_left(chain, run)


def test_two_sigints_to_the_group_0_3_s_apart_mid_training(chain):
    """An impatient Ctrl-C: the second one hurries the stop, and interrupts none of it."""
    run = stack_first(chain, "double-int")
    train_until_fitting(chain)
    os.killpg(run.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(run.pid, signal.SIGINT)
    assert_nothing_left(chain, run)
    assert "second signal: hurrying the stop" in run.output()


def test_ctrl_c_with_stdout_a_pipe_whose_reader_is_gone(chain):
    """`make run 2>&1 | tee log`, then Ctrl-C: tee is gone before the stack prints its stop."""
    run = stack_first(chain, "closed-stdout", tee=True)
    train_until_fitting(chain)
    run.tee.kill()
    run.tee.wait(10)
    os.killpg(run.pid, signal.SIGINT)
    assert_nothing_left(chain, run)


def test_sigint_to_a_make_run_started_with_sigint_ignored(chain):
    """`setsid nohup make run &` from a script, later `kill -INT -- -<its group>`."""
    chain.clear()
    run = BackgroundMakeRun(chain, "background")
    start(run)
    status = Path(f"/proc/{run.pid}/status").read_text().splitlines()
    ignored = next(line for line in status if line.startswith("SigIgn"))
    assert int(ignored.split()[1], 16) & (1 << (signal.SIGINT - 1)), ignored  # as the script started it
    train_until_fitting(chain)
    os.killpg(run.pid, signal.SIGINT)
    assert_nothing_left(chain, run)


def test_sigkill_of_the_stack_mid_training_leaves_no_server(chain):
    """Nothing can catch SIGKILL: the watchdog stops the servers, pool processes and JVM too."""
    run = stack_first(chain, "sigkill")
    train_until_fitting(chain)
    by_group: dict[int, list[str]] = {}
    for line in chain.remaining():
        by_group.setdefault(os.getpgid(int(line.split(":")[0])), []).append(line)
    worker = next(group for group in by_group.values() if any("celery" in line and " worker" in line for line in group))
    assert any("java" in line for line in worker), by_group  # the Spark JVM: a grandchild, in the worker's group
    os.kill(run.stack_pid(), signal.SIGKILL)
    assert_nothing_left(chain, run)


def test_the_next_make_run_starts_and_the_interrupted_job_completes_with_its_attempts_unchanged(chain):
    """Every stop above handed the one job back; the SIGKILL's too, through the watchdog."""
    if chain.seen_fitting_at is None:
        pytest.skip("no scenario ran")
    run = stack_first(chain, "after-sigkill")
    try:
        deadline = time.monotonic() + 300
        while (status := job_since_the_last_stop(chain))["status"] != "COMPLETED":
            assert status["status"] != "FAILED" and time.monotonic() < deadline, status
            time.sleep(0.5)
        assert status["attempts"] == 1 and status["given_back"], status
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        assert_nothing_left(chain, run)
