"""What the web server changes in cheroot, CherryPy's HTTP server: the one module that reaches
into cheroot's internals (its request, connection and server classes, its connection manager and
thread pool), so a cheroot upgrade is checked here and nowhere else: tests/test_httpserver.py
checks each internal used here, by introspection, and fails naming what a release changed.

* protocol errors answered in the service's JSON error body;
* deadlines for a request's headers and body, however slowly they trickle;
* a stop that drains: the requests in flight are answered before the server stops accepting
  connections, and what was accepted is answered before it exits, within a bounded grace.
"""

from __future__ import annotations

import ctypes
import json
import socket
import struct
import sys
import threading
import time
import uuid
from typing import Any

import cherrypy
from cheroot import errors
from cheroot.makefile import MakeFile, StreamReader
from cheroot.server import HTTPConnection
from cherrypy._cpwsgi_server import CPWSGIHTTPRequest, CPWSGIServer

from predictionservice.exceptions import ServiceError, code_for_status
from web.requestid import HEADER


def protocol_error(status: str, message: str) -> bytes:
    """The service's error body for a status line of the HTTP server's own."""
    text = message or status[4:] or "the HTTP server refused the request"
    return json.dumps(ServiceError(text, code=code_for_status(int(status[:3]))).to_dict()).encode()


class DeadlineSocketIO(socket.SocketIO):
    """A socket's reading side with a deadline: every receive waits only for what is left of it,
    so a client trickling a byte now and then cannot hold a server thread (the socket timeout
    alone restarts with every byte). ``rate`` extends the deadline by each byte received over it
    (a body must arrive at that rate on average)."""

    deadline: float | None = None
    rate: float = 0.0
    timed_out = False  # then nothing more is read: the answer goes out and the connection closes

    def start(self, seconds: float, rate: float = 0.0) -> None:
        self.deadline, self.rate = time.monotonic() + seconds, rate

    def readinto(self, buffer: Any) -> int | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                raise TimeoutError("timed out")  # what cheroot answers 408 to
            self._sock.settimeout(min(left, self._idle))
        try:
            received = super().readinto(buffer)
        except TimeoutError:
            self.timed_out = True
            raise
        if received and self.rate:
            self.deadline += received / self.rate
        return received


class DeadlineReader(StreamReader):
    """cheroot's socket reader over a DeadlineSocketIO."""

    def __init__(self, sock: socket.socket, bufsize: int, idle: float):
        raw = DeadlineSocketIO(sock, "rb")
        raw._idle = idle
        super(StreamReader, self).__init__(raw, bufsize)  # StreamReader's own SocketIO is not wanted
        self.bytes_read = 0


class JSONErrorRequest(CPWSGIHTTPRequest):
    """cheroot answers a request it cannot parse (request line, HTTP version, Content-Length,
    Transfer-Encoding, oversized URI) before the app runs, in plain text: here in the service's
    error body, as cheroot's own simple_response otherwise does (HTTP/1.0 has no 413/414)."""

    def parse_request(self) -> None:
        """The request line and headers within request_header_timeout, the body at
        request_body_min_rate after that allowance."""
        server = self.server
        self.conn.rfile.raw.start(server.request_header_timeout)
        super().parse_request()
        if self.ready:
            self.conn.rfile.raw.start(server.request_header_timeout, server.request_body_min_rate)

    def send_headers(self) -> None:
        """cheroot reads what is left of a body before it answers, to keep the connection: not
        from a reader whose deadline struck (it would raise and lose the 408)."""
        if self.conn.rfile.raw.timed_out or self.server.draining:  # a stopping server keeps no connection
            self.close_connection = True
        super().send_headers()

    def read_request_line(self) -> bool:
        try:
            return super().read_request_line()
        except ValueError:  # urlsplit of a malformed absolute URI ('http://[::1'): cheroot said 500
            self.simple_response("400 Bad Request", "Malformed Request-URI")
            return False

    def simple_response(self, status: Any, msg: Any = "") -> None:
        status = str(status)
        close = status[:3] in {"413", "414"}
        if close and self.response_protocol != "HTTP/1.1":
            status = "400 Bad Request"
        close = close or self.server.draining
        if close:
            self.close_connection = True
        message = msg.decode("ISO-8859-1") if isinstance(msg, bytes) else str(msg)
        body = protocol_error(status, message)
        head = [
            f"{self.server.protocol} {status}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"{HEADER}: {uuid.uuid4().hex}",  # every answer has one, even those the app never saw
        ]
        if close and self.response_protocol == "HTTP/1.1":
            head.append("Connection: close")
        try:
            self.conn.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("ISO-8859-1") + body)
        except OSError as ex:
            if ex.args[0] not in errors.socket_errors_to_ignore:
                raise


class JSONErrorConnection(HTTPConnection):
    RequestHandlerClass = JSONErrorRequest

    def __init__(self, server: Any, sock: socket.socket, file_class: Any = MakeFile):
        super().__init__(server, sock, file_class)
        plain, self.rfile = self.rfile, DeadlineReader(sock, self.rbufsize, server.timeout)
        plain.close()  # its hold on the socket would defer the socket's close

    def communicate(self) -> bool:
        """One request, counted while it runs (a stopping server waits for it)."""
        began = self.server.began()
        try:
            return super().communicate()
        finally:
            self.server.ended(began)


class JSONErrorServer(CPWSGIServer):
    """CherryPy's WSGI server with JSON protocol errors (it sets a request class of its own on
    cheroot's shared connection class, hence a connection class of ours) and a stop that drains.

    cheroot's own stop closed the listening socket at once (the connections queued on it were
    reset), then every connection not being served (a request just sent on a kept-alive
    connection was dropped unanswered), and refused connections while the requests in flight ran
    on. Here a stop (``shutdown_timeout`` seconds in all, its grace) first keeps serving until
    every request in flight at the signal is answered, every answer now closing its connection;
    then accepts what is queued on the listening socket and closes it (a client is refused from
    then on: its request never arrived, it may send it again); then waits until every accepted
    request is answered, and only then lets cheroot close the idle connections and end its
    threads. ``hurry()`` (a second signal) ends the grace at once."""

    request_header_timeout = 10.0
    request_body_min_rate = 65536.0
    draining = False
    SETTLE = 0.05  # seconds the server must stay idle to count as drained (a request may be in transit)

    def __init__(self, server_adapter: Any = cherrypy.server):
        super().__init__(server_adapter)
        self.ConnectionClass = JSONErrorConnection
        self._running: dict[int, float] = {}  # request number -> monotonic time it began
        self._count = 0
        self._lock = threading.Lock()
        self._deadline = float("inf")

    def began(self) -> int:
        with self._lock:
            self._count += 1
            self._running[self._count] = time.monotonic()
            return self._count

    def ended(self, number: int) -> None:
        with self._lock:
            self._running.pop(number, None)

    def hurry(self) -> None:
        """End the grace now: what still runs is cut."""
        self._deadline = time.monotonic()

    def stop(self) -> None:
        """Drain (see the class), then cheroot's own stop."""
        if not self.ready or self.draining:
            return
        signalled = time.monotonic()
        self._deadline = signalled + float(self.shutdown_timeout)
        self.draining = True
        self._wait(lambda: not self._running_since(signalled))
        self._stop_accepting()
        self._wait(self._drained)
        self.shutdown_timeout = max(0.0, self._deadline - time.monotonic())
        super().stop()

    def _wait(self, condition: Any) -> bool:
        """Whether condition() came true before the grace ended."""
        while not condition():
            if time.monotonic() >= self._deadline:
                return False
            time.sleep(0.01)
        return True

    def _running_since(self, moment: float) -> bool:
        """Whether a request that began by moment still runs."""
        with self._lock:
            return any(began <= moment for began in self._running.values())

    def _idle(self) -> bool:
        """No request running, none queued for a thread."""
        return not self._running and self.requests.qsize == 0

    def _drained(self) -> bool:
        """Idle, and still idle a moment later (a request just read off a kept-alive connection is
        on its way to a thread)."""
        if not self._idle():
            return False
        time.sleep(self.SETTLE)
        return self._idle()

    def _stop_accepting(self) -> None:
        """Take the listening socket out of the connection manager's selector, have the kernel
        complete no more connections on it, accept what it queued (closing it would reset those
        connections) and close it."""
        listener, manager = self.socket, self._connections
        if listener is None:
            return
        manager._selector.unregister(listener.fileno())
        refuse_new_connections(listener)
        listener.settimeout(0)
        while (conn := manager._from_server_socket(listener)) is not None:
            self.process_conn(conn)
        listener.close()  # cheroot's stop finds it closed and carries on


SO_ATTACH_FILTER = 26  # Linux's socket option for a classic BPF program
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # BPF_RET | BPF_K, 0: keep no byte of any packet


def refuse_new_connections(listener: socket.socket) -> bool:
    """Make the kernel drop what arrives for a listening socket (Linux: a BPF filter), so that
    connections already queued on it stay queued and no new one completes its handshake. Closing
    the socket after accepting its queue then resets no connection whose client believes it
    connected; a client sending a SYN meanwhile retries it and finds the port closed (refused:
    its request never left it). Whether the filter took (elsewhere the instant between the last
    accept and the close stays open)."""
    if not sys.platform.startswith("linux"):
        return False
    program = ctypes.create_string_buffer(_DROP_ALL, len(_DROP_ALL))  # copied by the kernel
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", 1, ctypes.addressof(program)))
    except OSError:
        return False
    return True
