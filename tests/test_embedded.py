"""embedded.py: the local redis-server and MongoDB (SecantusDB) processes, started for real."""

import os
import socket
import sys
from pathlib import Path

import pymongo
import pytest
import redis

from localservers import embedded
from localservers.embedded import ServerProcess, free_port, mongo_answers, redis_answers, start_mongo, start_redis


def gone(server: ServerProcess) -> bool:
    """The child has ended and been reaped: no process with its pid is left."""
    if server.running() or server.process.returncode is None:
        return False
    try:
        os.kill(server.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_free_port_gives_a_bindable_port():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert sock.getsockname() == ("127.0.0.1", port)


def test_answers_are_false_for_a_closed_port():
    port = free_port()
    assert redis_answers(f"redis://127.0.0.1:{port}/0", timeout=0.5) is False
    assert mongo_answers(f"mongodb://127.0.0.1:{port}/", timeout_ms=300) is False


def test_answers_are_true_for_the_session_servers(redis_url, mongo_uri):
    assert redis_answers(redis_url) is True
    assert mongo_answers(mongo_uri) is True


def test_start_redis_persistent_writes_an_aof_and_keeps_keys_across_a_restart(tmp_path):
    data = tmp_path / "redis"
    with start_redis(free_port(), data, persistent=True) as server:
        assert server.name == "redis-server" and server.url.endswith("/0")
        client = redis.Redis.from_url(server.url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        client.set("survivor", "still here")
        client.close()
    assert gone(server)
    aof = [p for p in data.rglob("*.aof") if p.is_file()]
    assert aof, sorted(str(p) for p in data.rglob("*"))
    assert any(b"survivor" in p.read_bytes() for p in aof)

    with start_redis(free_port(), data, persistent=True) as again:
        client = redis.Redis.from_url(again.url)
        assert client.get("survivor") == b"still here"
        client.close()
    assert gone(again)


def test_start_redis_not_persistent_keeps_nothing(tmp_path):
    data = tmp_path / "redis"
    with start_redis(free_port(), data, persistent=False) as server:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.set("ephemeral", "1")
        client.close()
    assert not list(data.rglob("*.aof"))
    with start_redis(free_port(), data, persistent=False) as again:
        client = redis.Redis.from_url(again.url)
        assert client.get("ephemeral") is None
        client.close()


def test_stop_ends_redis_and_it_no_longer_answers(tmp_path):
    server = start_redis(free_port(), tmp_path / "r", persistent=False)
    assert server.running() and redis_answers(server.url)
    server.stop()
    assert gone(server)
    assert redis_answers(server.url) is False
    server.stop()  # a second stop is harmless
    assert (tmp_path / "r" / "redis.log").exists()


def test_start_redis_on_an_occupied_port_raises(redis_url, tmp_path):
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    try:
        server = start_redis(port, tmp_path / "second", persistent=False)
    except RuntimeError:
        return
    exit_code = server.process.wait(30)
    server.stop()
    pytest.fail(f"start_redis returned a redis-server that exited with {exit_code}")


def test_start_mongo_without_mongod_starts_secantus_that_pymongo_can_use(tmp_path):
    server = start_mongo(free_port(), tmp_path / "mongo", use_mongod=False)
    try:
        assert server.name == "secantusdb"
        assert server.url.startswith("mongodb://127.0.0.1:") and server.url.endswith("/")
        client = pymongo.MongoClient(server.url, serverSelectionTimeoutMS=5000)
        try:
            assert client.admin.command("ping")["ok"] == 1
            client["probe"]["c"].insert_one({"_id": 1, "v": "x"})
            assert client["probe"]["c"].find_one({"_id": 1}) == {"_id": 1, "v": "x"}
        finally:
            client.close()
        assert (tmp_path / "mongo" / "secantus").is_dir()
    finally:
        server.stop()
    assert gone(server)
    assert mongo_answers(server.url, timeout_ms=300) is False


def test_server_process_reports_a_child_that_exits(tmp_path):
    server = ServerProcess(
        "quitter", [sys.executable, "-c", "print('bye'); raise SystemExit(3)"], "x://", tmp_path / "q.log"
    )
    with pytest.raises(RuntimeError) as caught:
        server.wait_until(lambda: False, timeout=30)
    assert str(caught.value) == f"quitter exited with 3; see {tmp_path / 'q.log'}"
    server.stop()
    assert (tmp_path / "q.log").read_text() == "bye\n"


def test_server_process_that_never_answers_is_stopped(tmp_path):
    server = ServerProcess(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], "x://", tmp_path / "s.log"
    )
    with pytest.raises(RuntimeError) as caught:
        server.wait_until(lambda: False, timeout=0.3)
    assert str(caught.value) == f"sleeper did not answer within 0s; see {tmp_path / 's.log'}"
    assert gone(server)
    assert server.process.returncode == -15  # ended by SIGTERM


def test_host_port_and_env_with():
    assert embedded.host_port("redis://cache:6380/0", 6379) == ("cache", 6380)
    assert embedded.host_port("mongodb://db/", 27017) == ("db", 27017)
    assert embedded.host_port("redis:///0", 6379) == ("127.0.0.1", 6379)
    env = embedded.env_with(SOME_TEST_VARIABLE="1")
    assert env["SOME_TEST_VARIABLE"] == "1" and "SOME_TEST_VARIABLE" not in os.environ
    assert env["PATH"] == os.environ["PATH"]


def test_secantus_command_names_something_runnable():
    command = embedded.secantus_command()
    assert Path(command[0]).exists()
    assert command == [str(Path(sys.executable).with_name("secantusd-py"))] or command[1:] == ["-m", "secantus"]


def test_port_holder_names_the_process_listening(redis_url):
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    holder = embedded.port_holder(port)
    assert holder.startswith("pid ") and "redis-server" in holder
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        mine = embedded.port_holder(sock.getsockname()[1])
        assert mine.startswith(f"pid {os.getpid()} (") and sys.executable.rsplit("/", 1)[-1][:6] in mine
    assert embedded.port_holder(free_port()) == "a process that is not listening any more"
