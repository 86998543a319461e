"""predictionservice/authlimit.py, guessing slowed: failed authentications counted per client
address in Redis. Fifty wrong keys from one address get 429 with Retry-After (on every replica: the
count is in Redis), while a right key from another address is answered as usual."""

from __future__ import annotations

import uuid

import pytest

from helpers import InProcess
from modelservice import modelservice
from predictionservice.authlimit import FailureLimit
from predictionservice.exceptions import TooManyRequests

TOKEN = "limit-token"


def test_the_counter_blocks_past_the_limit_and_expires(redis_db):
    limit = FailureLimit(redis_db, "p:", allowed=3, window=1)
    for _ in range(3):
        limit.check("10.0.0.1")
        limit.failed("10.0.0.1")
    with pytest.raises(TooManyRequests) as refused:
        limit.check("10.0.0.1")
    assert 1 <= refused.value.retry_after <= 1
    limit.check("10.0.0.2")  # another address is not counted
    assert 0 < redis_db.pttl("p:__auth_failures__:10.0.0.1") <= 1000  # and the window ends by itself


@pytest.fixture()
def replicas(base_params):
    params = {**base_params, "auth_token": TOKEN, "redis_key_prefix": f"l{uuid.uuid4().hex[:8]}:",
              "auth_failures_allowed": 20, "auth_failure_window": 60}  # fmt: skip
    return InProcess(modelservice(params)), InProcess(modelservice(params))


def from_address(app, address: str, secret: str, path: str = "/models/"):
    return app.get(path, headers={"Authorization": f"Bearer {secret}"}, environ_base={"REMOTE_ADDR": address})


def test_fifty_wrong_keys_from_one_address_get_429(replicas):
    first, second = replicas
    guesser = "192.0.2.7"
    answers = [from_address(first if n % 2 else second, guesser, f"psk_guess{n}").status_code for n in range(50)]
    assert answers[:20] == [401] * 20 and set(answers[20:]) == {429}
    refused = from_address(second, guesser, TOKEN)  # the right key from the guessing address: still slowed
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert from_address(first, "192.0.2.8", TOKEN).status_code == 200  # another address is not slowed
    assert from_address(first, guesser, "", "/health").status_code == 200  # the probe needs no key


def test_the_page_sign_in_counts_too(replicas):
    first, _ = replicas
    page = first.get("/ui/login", environ_base={"REMOTE_ADDR": "192.0.2.9"}).text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    there = {"REMOTE_ADDR": "192.0.2.9"}
    answers = [
        first.post("/ui/login", data={"token": f"guess{n}", "csrf_token": token}, environ_base=there).status_code
        for n in range(25)
    ]
    assert answers[:20] == [401] * 20 and set(answers[20:]) == {429}
