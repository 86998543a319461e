"""modelserver.py: the CherryPy server itself, driven with raw HTTP over a socket.

Requests the HTTP server refuses before the app runs (bad request line, HTTP version,
Content-Length, Transfer-Encoding, an oversized URI) get the service's JSON error body with the
code of exceptions.STATUS, like every error of the app; the access log (TransLogger) records
what the app answered; the server stays up and keeps serving.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from helpers import Service
from httpserver import protocol_error, refuse_new_connections
from predictionservice.exceptions import STATUS, code_for_status

# (id, raw request, expected status, expected code)
REFUSED = [
    ("http-2", b"GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505, "http_version_not_supported"),
    ("http-9", b"GET /health HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 505, "http_version_not_supported"),
    ("no-version", b"GET /health\r\n\r\n", 400, "invalid_request"),
    ("garbage-line", b"\x00\x01\x02 garbage\r\n\r\n", 400, "invalid_request"),
    (
        "bad-content-length",
        b"POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
        400,
        "invalid_request",
    ),
    (
        "transfer-encoding-gzip",
        b"POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "not_implemented",
    ),
    ("header-without-colon", b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "invalid_request"),
    ("absolute-uri-bad", b"GET http://[::1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "invalid_request"),
    # cut before its protocol was read, so answered as to HTTP/1.0 (no 414 there), as cheroot does
    ("uri-too-long", b"GET /" + b"a" * 600_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "invalid_request"),
    (
        "headers-too-large",
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 600_000 + b"\r\n\r\n",
        413,
        "payload_too_large",
    ),
    ("options-bad", b"OPTIONS http://[x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "invalid_request"),
    ("lowercase-method", b"get /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "invalid_request"),
    (
        "chunked-bad-size",
        b"POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        400,
        "invalid_request",
    ),
]


@pytest.fixture(scope="module")
def web(tmp_path_factory, base_params):
    started = Service(tmp_path_factory.mktemp("modelserver"), base_params, worker=False)
    yield started
    started.stop()


def raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading all of an oversized request
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
            length = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(body) >= int(length[0].split(b":")[1]):
                break
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:  # what follows is the answer to a next request, if any
        body = body[: int(headers["content-length"])]
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(("name", "request_bytes", "status", "code"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_request_the_http_server_refuses_gets_the_json_error_body(web, name, request_bytes, status, code):
    got, headers, body = raw(web.url, request_bytes)
    assert got == status, body[:300]
    assert headers["content-type"] == "application/json"
    assert len(headers["x-request-id"]) == 32  # an id even where the app never ran
    error = json.loads(body)["error"]
    assert error["code"] == code and STATUS[code] == status
    assert error["message"] and error["details"] == []
    assert b"Traceback" not in body
    assert web.get("/health").json()["status"] == "ok"


def test_every_protocol_status_has_a_code_of_the_status_table():
    for status in (400, 405, 408, 413, 414, 500, 501, 503, 505):  # what cheroot answers by itself
        assert STATUS[code_for_status(status)] == status
    assert json.loads(protocol_error("418 I'm a teapot", ""))["error"] == {
        "code": "invalid_request",
        "message": "I'm a teapot",
        "details": [],
    }


def test_keep_alive_requests_and_the_access_log(web):
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    lost = b"GET /no-such-route HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: lost-1\r\nConnection: close\r\n\r\n"
    got, headers, body = raw(web.url, lost)
    assert got == 404 and json.loads(body)["error"]["code"] == "not_found"
    assert headers["x-request-id"] == "lost-1"
    parts = urlsplit(web.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        for _ in range(3):  # one connection, three answers
            sock.sendall(request)
            data = b""
            while b'"workers"' not in data:
                data += sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 ")
    log = web.logged(lambda log: log.count('"GET /health HTTP/1.1" 200') >= 3 and "/no-such-route" in log)
    assert '"GET /no-such-route HTTP/1.1" 404' in log
    (line,) = [line for line in log.splitlines() if "/no-such-route" in line]
    assert line.endswith(" lost-1")  # the request's id closes its access log line
    assert log.count('"GET /health HTTP/1.1" 200') >= 3


@pytest.fixture(scope="module")
def few_threads(tmp_path_factory, base_params):
    """A web server of 4 threads that waits 2 s for a request's headers."""
    params = {**base_params, "threads": 4, "request_header_timeout": 2.0}
    started = Service(tmp_path_factory.mktemp("few_threads"), params, worker=False)
    yield started
    started.stop()


def test_clients_trickling_headers_cannot_hold_every_thread(few_threads):
    """Issue 11, finding 5: as many connections as threads, each sending a header byte now and
    then, held every CherryPy thread (/health timed out after 40 s): the socket timeout restarts
    with each byte. Each now gets its 408 at the header deadline, and /health answers."""
    parts = urlsplit(few_threads.url)
    stop = threading.Event()
    answers: list[bytes] = []

    def trickle() -> None:
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            try:
                while not stop.wait(0.5):
                    sock.sendall(b"x")
            except OSError:  # the server answered and closed
                pass
            answers.append(read_answer(sock))

    tricklers = [threading.Thread(target=trickle) for _ in range(6)]
    for thread in tricklers:
        thread.start()
    try:
        time.sleep(1.0)  # every thread of the server is reading a trickle by now
        health = requests.get(few_threads.url + "/health", timeout=20)  # 20 s: before the fix it never came
        assert health.status_code in (200, 503), health.text
    finally:
        stop.set()
        for thread in tricklers:
            thread.join(30)
    assert len(answers) == 6
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"


def read_answer(sock) -> bytes:
    """A whole answer: its head, then as much body as its Content-Length says (one recv may
    return the head alone, the body arriving in a segment of its own)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_body_that_stops_arriving_is_408(few_threads):
    parts = urlsplit(few_threads.url)
    head = b"POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: 100000\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + b'{"modelkey": "m", ')  # and then nothing more
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "request_timeout" and "request_body_min_rate" in error["message"]


def test_the_access_log_cannot_be_forged(web):
    """Issue 25, 3.10: X-Forwarded-For was logged instead of the peer, as sent (a whole fake log
    line fit in it), and quotes in the query and ESC, CR and NUL in the User-Agent were written
    raw. The peer is logged (no proxy is trusted by default) and every field is escaped."""
    forged = '6.6.6.6" - - [01/Jan/2020:00:00:00 +0000] "GET /forged HTTP/1.1" 200 1 "-" "-" x'
    request = (
        b'GET /health?q="quoted"&b=\\ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: forge-1\r\n'
        b"X-Forwarded-For: " + forged.encode() + b"\r\n"
        b"User-Agent: evil\x1b[31mred\x00nul\rcr\x7f\xe9\r\nConnection: close\r\n\r\n"
    )
    status, _, _ = raw(web.url, request)
    assert status == 200
    log = web.logged(lambda log: "forge-1" in log)
    (line,) = [line for line in log.splitlines() if "forge-1" in line]
    assert "6.6.6.6" not in log and "/forged" not in log
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /health?q=\\"quoted\\"&b=\\\\ HTTP/1.1" 200 ' in line
    assert line.endswith(' "-" "evil\\x1b[31mred\\x00nul\\x0dcr\\x7f\\xe9" forge-1'), line
    assert not any(c in log for c in "\x1b\x00\r\x7f")


def test_a_stopping_listener_keeps_its_queue_and_completes_no_new_connection():
    """The drain's last step (issue 25, 3.12): connections the kernel queued are accepted and
    served after the filter is attached; a new client completes no handshake (it is not told it
    connected, so it sends nothing that could be lost), and is refused once the socket closes."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    port = listener.getsockname()[1]
    queued = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    assert refuse_new_connections(listener)
    with pytest.raises(TimeoutError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5)  # its SYN dropped: no connection
    listener.settimeout(0)
    accepted = []
    while True:
        try:
            accepted.append(listener.accept()[0])
        except BlockingIOError:
            break
    listener.close()
    assert len(accepted) == 3
    for client, server in zip(queued, accepted, strict=True):
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"
        server.sendall(b"pong")
        assert client.recv(4) == b"pong"
        client.close()
        server.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.fixture(scope="module")
def secured(tmp_path_factory, base_params):
    params = {**base_params, "auth_token": "server-token-" + "t" * 24, "redis_key_prefix": "logsecrets:"}
    started = Service(tmp_path_factory.mktemp("secured"), params, worker=False)
    yield started
    started.stop()


def test_no_secret_reaches_the_servers_log(secured):
    """Issue 26: the log never shows a secret: not the service's token, not a key (right, wrong or
    revoked), whether sent as the API wants it (the Authorization header, the login form) or pasted
    into a URL or a Referer by mistake. Read from the real server's own log (access and app lines)."""
    token = secured.params["auth_token"]
    made = secured.post("/keys/", json={"name": "logged", "scopes": ["read"]}).json()
    key = made["key"]
    wrong = key[:-4] + "XXXX"
    for secret in (key, wrong, token):
        requests.get(secured.url + "/models/", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        requests.get(secured.url + f"/models/?api_key={secret}&token={secret}", timeout=30)
        requests.get(secured.url + "/health", headers={"Referer": f"{secured.url}/ui/?token={secret}"}, timeout=30)
        requests.post(secured.url + "/ui/login", data={"token": secret, "next": "/ui/models"}, timeout=30,
                      allow_redirects=False)  # fmt: skip
    assert secured.request("DELETE", f"/keys/{made['id']}").status_code == 204
    requests.get(secured.url + "/models/", headers={"Authorization": f"Bearer {key}"}, timeout=30)  # revoked: 401
    log = secured.logged(lambda log: log.count('"POST /ui/login HTTP/1.1"') >= 3 and log.count(" 401 ") >= 5)
    assert log.count("[redacted]") >= 9, log[-3000:]
    for secret in (key, wrong, token, key[4:20]):
        assert secret not in log, f"a secret in the server's log:\n{log[-3000:]}"


def test_the_heap_built_before_serving_is_left_out_of_every_collection():
    """settle_heap: what the process holds is frozen (full collections no longer walk it), and
    what was already garbage is collected, not kept."""
    import gc
    import weakref

    from modelserver import settle_heap

    class Node:
        pass

    cycle = Node()
    cycle.self = cycle  # garbage only the collector can free
    gone = weakref.ref(cycle)
    del cycle
    held = [Node()]
    try:
        settle_heap()
        assert gone() is None
        assert gc.get_freeze_count() > 1000
        assert not any(o is held for o in gc.get_objects(generation=2))  # frozen: out of reach
    finally:
        gc.unfreeze()
    assert any(o is held for o in gc.get_objects())
