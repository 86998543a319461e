"""modelserver.py under load and at its stop, each on a web server of its own (no worker: the
session's answers pings on the same broker), because each test ends by signalling it.

Issue 25: a score of monitors polling /health hung the server for good; SIGTERM dropped the
requests in flight and refused connections before they were drained.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from helpers import TOKEN, Service


@pytest.fixture()
def web(tmp_path, base_params, service):
    started = Service(tmp_path, {**base_params, "auth_token": TOKEN}, worker=False)
    yield started
    started.stop()


def terminated_within(web: Service, seconds: float) -> bool:
    """SIGTERM to the web server (its process alone); whether it exited within seconds."""
    process = web.children["web"]
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def poll(url: str, stop: threading.Event, answers: list[int]) -> None:
    """A monitor: /health without a token, again and again (each call bounded)."""
    while not stop.is_set():
        try:
            answers.append(requests.get(url + "/health", timeout=5).status_code)
        except requests.RequestException:
            answers.append(0)


def test_health_pollers_cannot_hang_the_server(web):
    """Issue 25, 3.1: every /health broadcast a Celery ping from its request thread (a pooled
    broker connection held while a producer waited for another); 12 pollers took all 10 of
    kombu's connections and every thread waited for ever: /models/ never answered and SIGTERM
    did not stop the process. Now the workers are counted by one background ping."""
    stop, answers = threading.Event(), []
    pollers = [threading.Thread(target=poll, args=(web.url, stop, answers)) for _ in range(20)]
    for thread in pollers:
        thread.start()
    try:
        time.sleep(8)
        models = requests.get(web.url + "/models/", headers=web.auth_headers(), timeout=10)  # it never came
        assert models.status_code == 200, models.text
    finally:
        stop.set()
        for thread in pollers:
            thread.join(30)
    assert answers.count(200) > 20 and answers.count(200) > 0.9 * len(answers), answers[-40:]
    health = requests.get(web.url + "/health", timeout=10).json()
    assert health["status"] == "ok" and health["workers"] >= 1, health  # the session's worker, counted
    assert terminated_within(web, 15), "the web server did not stop on SIGTERM"
