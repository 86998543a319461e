"""The web server: CherryPy serving the Flask app wrapped in Paste's TransLogger.

    python modelserver.py parameters.json      (installed: prediction-server [parameters.json])

Host, port and thread pool come from the configuration (loopback unless told otherwise);
autoreload is off unless asked for; the access log goes to stdout, one line per request in the
combined log format followed by the request's X-Request-ID. SIGTERM and SIGINT stop it
cleanly: the requests in flight are answered, then it stops accepting connections, answers what
it accepted and exits, within ``drain_timeout`` seconds (a second signal cuts that short). What
changes cheroot, the HTTP server, is in httpserver.py.
"""

from __future__ import annotations

import atexit
import gc
import logging
import logging.handlers
import queue
import sys
from typing import Any

import cherrypy
from paste.translogger import TransLogger

from httpserver import JSONErrorServer
from modelservice import modelservice
from predictionservice.config import load_parameters
from predictionservice.version import __version__
from web.accesslog import client_address, log_line, proxy_networks
from web.services import EXTENSION


class RequestLogger(TransLogger):
    """TransLogger's combined log line, every field escaped, with the client's address (the peer,
    or whom a trusted proxy names) and the request's X-Request-ID at its end (web/accesslog.py)."""

    def __init__(self, application: Any, proxies: tuple = (), **kwargs: Any):
        super().__init__(application, **kwargs)
        self.proxies = proxies

    def write_log(self, environ: dict, method: str, req_uri: str, start: Any, status: str, bytes: Any) -> None:
        client = client_address(environ, self.proxies)
        self.logger.log(self.logging_level, log_line(environ, client, method, req_uri, start, status, bytes))


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
    proxies = proxy_networks(params["trusted_proxies"])
    return RequestLogger(modelservice(params), proxies, logger=access_logger(params["access_log"]))


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
            "server.shutdown_timeout": float(params["drain_timeout"]),
        }
    )
    server = JSONErrorServer(cherrypy.server)
    server.request_header_timeout = float(params["request_header_timeout"])
    server.request_body_min_rate = float(params["request_body_min_rate"])
    cherrypy.server.httpserver = server


def stop_or_hurry() -> None:
    """The first SIGTERM or SIGINT stops the server (it drains); one more while it drains cuts the
    drain short. Engine.exit again from the signal handler, inside the first stop, would wait for
    the port to be free before the drain had closed it, and kill the process there."""
    server = cherrypy.server.httpserver
    if isinstance(server, JSONErrorServer) and server.draining:
        server.hurry()
    else:
        cherrypy.engine.exit()


def run(params: dict[str, Any], app: Any = None) -> None:
    """Serve ``app`` (default: the service, inside TransLogger) until SIGTERM or SIGINT."""
    logging.basicConfig(level=params["log_level"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = app if app is not None else wsgi_app(params)
    configure(app, params)
    background = getattr(getattr(app, "application", app), "extensions", {}).get(EXTENSION)
    if background is not None:  # the service's own threads run while the server does
        cherrypy.engine.subscribe("start", background.start)
        cherrypy.engine.subscribe("stop", background.stop)
    handlers = cherrypy.engine.signal_handler.handlers
    handlers["SIGTERM"] = handlers["SIGINT"] = stop_or_hurry
    cherrypy.engine.signals.subscribe()  # SIGTERM, SIGINT -> drain and exit, SIGHUP -> exit (not daemonized)
    settle_heap()
    cherrypy.engine.start()
    logging.getLogger("prediction_service").info(
        "serving on http://%s:%s with %s threads", params["host"], params["port"], params["threads"]
    )
    try:
        cherrypy.engine.block()
    except KeyboardInterrupt:
        cherrypy.engine.exit()


def settle_heap() -> None:
    """Move what the process holds before it serves (its modules, the app, the service's
    collaborators: about 200,000 objects the collector tracks) out of the collector's reach.
    Each full collection walked them all: a request that set one off waited up to 90 ms (a
    batch of 1,000 records takes 3.5), the tail of bench_predict's batch. What is garbage now is
    collected first, so none of it is kept."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    if len(argv) == 2 and argv[1] == "--version":
        print(f"prediction-server {__version__}")
        return 0
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__)
        return 2
    run(load_parameters(argv[1] if len(argv) == 2 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
