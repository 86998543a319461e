"""The web server: CherryPy serving the Flask app wrapped in Paste's TransLogger.

    python modelserver.py parameters.json

Host, port and thread pool come from the configuration (loopback unless told otherwise);
autoreload is off unless asked for; the access log goes to stdout. SIGTERM and SIGINT stop it
cleanly (CherryPy's engine drains the requests in flight).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import cherrypy
from paste.translogger import TransLogger

from config import load_parameters
from modelservice import modelservice


def access_logger(enabled: bool) -> logging.Logger:
    logger = logging.getLogger("prediction_service.access")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO if enabled else logging.WARNING)
    return logger


def wsgi_app(params: dict[str, Any]) -> Any:
    """The Flask app of ``modelservice(params)`` inside TransLogger."""
    return TransLogger(modelservice(params), logger=access_logger(params["access_log"]))


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


def run(params: dict[str, Any], app: Any = None) -> None:
    """Serve ``app`` (default: the service, inside TransLogger) until SIGTERM or SIGINT."""
    logging.basicConfig(level=params["log_level"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure(app if app is not None else wsgi_app(params), params)
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
