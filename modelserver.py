"""The web server: CherryPy serving the Flask app wrapped in Paste's TransLogger.

    python modelserver.py parameters.json

Host, port and thread pool come from the configuration (loopback unless told otherwise);
autoreload is off unless asked for; the access log goes to stdout, one line per request in the
combined log format followed by the request's X-Request-ID. SIGTERM and SIGINT stop it
cleanly (CherryPy's engine drains the requests in flight).
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import socket
import sys
import time
import uuid
from typing import Any

import cherrypy
from cheroot import errors
from cheroot.makefile import MakeFile, StreamReader
from cheroot.server import HTTPConnection
from cherrypy._cpwsgi_server import CPWSGIHTTPRequest, CPWSGIServer
from paste.translogger import TransLogger

from modelservice import modelservice
from predictionservice.config import load_parameters
from predictionservice.exceptions import ServiceError, code_for_status
from web.requestid import ENVIRON_KEY, HEADER
from web.services import EXTENSION


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
        if self.conn.rfile.raw.timed_out:
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
        if close:
            self.close_connection = True
            if self.response_protocol != "HTTP/1.1":
                status = "400 Bad Request"
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


class JSONErrorServer(CPWSGIServer):
    """CherryPy's WSGI server with JSON protocol errors (it sets a request class of its own on
    cheroot's shared connection class, hence a connection class of ours)."""

    request_header_timeout = 10.0
    request_body_min_rate = 65536.0

    def __init__(self, server_adapter: Any = cherrypy.server):
        super().__init__(server_adapter)
        self.ConnectionClass = JSONErrorConnection


class RequestLogger(TransLogger):
    """TransLogger's combined log line with the request's X-Request-ID at its end (the app
    puts the id in the WSGI environ; '-' when the app never ran)."""

    def write_log(self, environ: dict, method: str, req_uri: str, start: Any, status: str, bytes: Any) -> None:
        line = '%s - %s [%s] "%s %s %s" %s %s "%s" "%s" %s' % (  # noqa: UP031 - the log format's own notation
            environ.get("HTTP_X_FORWARDED_FOR") or environ.get("REMOTE_ADDR") or "-",
            environ.get("REMOTE_USER") or "-",
            time.strftime("%d/%b/%Y:%H:%M:%S %z", start),
            method,
            req_uri,
            environ.get("SERVER_PROTOCOL"),
            status.split(None, 1)[0],
            bytes or "-",
            environ.get("HTTP_REFERER", "-"),
            environ.get("HTTP_USER_AGENT", "-"),
            environ.get(ENVIRON_KEY, "-"),
        )
        self.logger.log(self.logging_level, line)


def access_logger(enabled: bool) -> logging.Logger:
    """The access log on stdout, written by a thread of its own: a request thread only queues its
    line. Written in the request thread, 16 threads waited on the handler's lock for most of a
    request's time (a write and a flush per line, the GIL given up and won back inside the lock:
    78 % of a single-record prediction's samples in bench_predict --profile). The queue is
    drained at exit, so no line is lost on a clean stop."""
    logger = logging.getLogger("prediction_service.access")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        writer = logging.handlers.QueueListener(lines, handler)
        writer.start()
        atexit.register(writer.stop)
        logger.addHandler(_LineQueue(lines))
    logger.propagate = False
    logger.setLevel(logging.INFO if enabled else logging.WARNING)
    return logger


class _LineQueue(logging.handlers.QueueHandler):
    """Queues a log line as it is: the message is formatted already, and QueueHandler's own
    prepare() (a copy of the record, its message formatted again) is work nobody reads."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def wsgi_app(params: dict[str, Any]) -> Any:
    """The Flask app of ``modelservice(params)`` inside TransLogger (with request ids)."""
    return RequestLogger(modelservice(params), logger=access_logger(params["access_log"]))


def configure(app: Any, params: dict[str, Any]) -> None:
    cherrypy.tree.graft(app, "/")
    cherrypy.config.update(
        {
            "environment": "production",
            "engine.autoreload.on": bool(params["autoreload"]),
            "log.screen": False,
            "server.socket_host": params["host"],
            "server.socket_port": int(params["port"]),
            "server.thread_pool": int(params["threads"]),
            "server.socket_queue_size": 128,
            "server.max_request_body_size": 0,  # the app enforces its own per-route limits
            "server.shutdown_timeout": 5,
        }
    )
    server = JSONErrorServer(cherrypy.server)
    server.request_header_timeout = float(params["request_header_timeout"])
    server.request_body_min_rate = float(params["request_body_min_rate"])
    cherrypy.server.httpserver = server


def run(params: dict[str, Any], app: Any = None) -> None:
    """Serve ``app`` (default: the service, inside TransLogger) until SIGTERM or SIGINT."""
    logging.basicConfig(level=params["log_level"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = app if app is not None else wsgi_app(params)
    configure(app, params)
    background = getattr(getattr(app, "application", app), "extensions", {}).get(EXTENSION)
    if background is not None:  # the service's own threads run while the server does
        cherrypy.engine.subscribe("start", background.start)
        cherrypy.engine.subscribe("stop", background.stop)
    cherrypy.engine.signals.subscribe()  # SIGTERM -> exit, SIGHUP -> exit (not daemonized)
    cherrypy.engine.start()
    logging.getLogger("prediction_service").info(
        "serving on http://%s:%s with %s threads", params["host"], params["port"], params["threads"]
    )
    try:
        cherrypy.engine.block()
    except KeyboardInterrupt:
        cherrypy.engine.exit()


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__)
        return 2
    run(load_parameters(argv[1] if len(argv) == 2 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
