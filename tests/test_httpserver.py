"""httpserver.py: the guard on cheroot's internals. httpserver.py is the one module that reaches
into cheroot's (and CherryPy's server's) private classes, attributes and method signatures; a
cheroot release may change them without a word, and the server would then break at run time (a
drain that never ends, a reader that misses its setup) rather than at import. These tests check,
by introspection, each internal httpserver.py uses, and fail naming what changed and what to
re-check; they need no server (the server's behaviour is tests/test_modelserver.py's).
"""

from __future__ import annotations

import _pyio
import inspect
import re
import socket
from dataclasses import dataclass
from typing import Any

import cheroot
import cherrypy
import pytest
from cheroot import connections, errors, makefile, server
from cheroot.workers import threadpool
from cherrypy._cpwsgi_server import CPWSGIHTTPRequest, CPWSGIServer

import httpserver
from helpers import ROOT

UPGRADE = (
    "httpserver.py reaches into cheroot's internals: before moving the pin in requirements.txt, re-read "
    "cheroot's makefile.py (StreamReader), server.py (HTTPRequest, HTTPConnection, HTTPServer.prepare/stop), "
    "connections.py (ConnectionManager._selector, _from_server_socket) and workers/threadpool.py (qsize) against "
    "what httpserver.py does, run tests/test_modelserver.py (protocol errors, deadlines, the drain), then update "
    "INTERNALS here"
)


@dataclass(frozen=True)
class Internal:
    """One thing of cheroot's that httpserver.py relies on: owner.name exists; with parameters,
    its signature has these names; with kind, it is one (a property read as a value); with sets,
    the method owner.name assigns exactly these self attributes; with assigned_in, name is an
    instance attribute that the method owner.assigned_in still sets."""

    owner: Any
    name: str
    why: str
    parameters: tuple[str, ...] | None = None
    kind: type | None = None
    sets: tuple[str, ...] | None = None
    assigned_in: str | None = None


def _assigned(function: Any) -> set[str]:
    """The self attributes a method assigns, from its source."""
    return set(re.findall(r"\bself\.(\w+)\s*=(?!=)", inspect.getsource(function)))


def problem(internal: Internal) -> str | None:
    """What changed about one internal, or None when it is as httpserver.py expects."""
    where = f"{getattr(internal.owner, '__qualname__', internal.owner.__name__)}.{internal.name}"
    if internal.assigned_in is not None:
        method = getattr(internal.owner, internal.assigned_in, None)
        if method is None or internal.name not in _assigned(method):
            return f"{where} is no longer set by {internal.assigned_in}() ({internal.why})"
        return None
    if not hasattr(internal.owner, internal.name):
        return f"{where} is gone ({internal.why})"
    found = inspect.getattr_static(internal.owner, internal.name)
    if internal.kind is not None and not isinstance(found, internal.kind):
        return f"{where} is a {type(found).__name__}, not a {internal.kind.__name__} ({internal.why})"
    if internal.parameters is not None:
        names = tuple(inspect.signature(getattr(internal.owner, internal.name)).parameters)
        if names != internal.parameters:
            return f"{where}{names} was {internal.parameters} ({internal.why})"
    assigned = _assigned(getattr(internal.owner, internal.name)) if internal.sets is not None else set()
    if internal.sets is not None and assigned != set(internal.sets):
        return f"{where} now sets {sorted(assigned)}, not {list(internal.sets)} ({internal.why})"
    return None


READER = (
    "DeadlineReader skips StreamReader.__init__ (super(StreamReader, self)) to give _pyio.BufferedReader a raw "
    "reader of its own"
)
REQUEST = "JSONErrorRequest overrides it and calls it through super()"
INTERNALS = [
    Internal(makefile, "MakeFile", "JSONErrorConnection's file_class default", parameters=("sock", "mode", "bufsize")),
    Internal(makefile.StreamReader, "__init__", READER, parameters=("self", "sock", "mode", "bufsize")),
    Internal(makefile.StreamReader, "__init__", READER + ": what else it sets is skipped", sets=("bytes_read",)),
    Internal(_pyio.BufferedReader, "__init__", READER, parameters=("self", "raw", "buffer_size")),
    Internal(makefile.StreamReader, "read", "counts bytes_read, which DeadlineReader sets itself"),
    Internal(socket.SocketIO, "readinto", "DeadlineSocketIO overrides it", parameters=("self", "b")),
    Internal(socket.SocketIO, "_sock", "DeadlineSocketIO sets its timeout", assigned_in="__init__"),
    Internal(server.HTTPRequest, "parse_request", REQUEST, parameters=("self",)),
    Internal(server.HTTPRequest, "send_headers", REQUEST, parameters=("self",)),
    Internal(server.HTTPRequest, "read_request_line", REQUEST, parameters=("self",)),
    Internal(
        server.HTTPRequest, "simple_response", "JSONErrorRequest replaces it", parameters=("self", "status", "msg")
    ),
    Internal(server.HTTPRequest, "ready", "parse_request's outcome, read after it"),
    Internal(server.HTTPRequest, "close_connection", "set to close after the answer"),
    Internal(server.HTTPRequest, "response_protocol", "HTTP/1.0 has no 413/414", assigned_in="__init__"),
    Internal(server.HTTPRequest, "server", "the deadlines and draining are read on it", assigned_in="__init__"),
    Internal(server.HTTPRequest, "conn", "its rfile (the deadline) and wfile", assigned_in="__init__"),
    Internal(
        server.HTTPConnection, "__init__", "JSONErrorConnection's", parameters=("self", "server", "sock", "makefile")
    ),
    Internal(server.HTTPConnection, "rfile", "replaced by a DeadlineReader", assigned_in="__init__"),
    Internal(server.HTTPConnection, "wfile", "simple_response writes to it", assigned_in="__init__"),
    Internal(server.HTTPConnection, "rbufsize", "the DeadlineReader's buffer"),
    Internal(server.HTTPConnection, "RequestHandlerClass", "JSONErrorRequest is set there"),
    Internal(server.HTTPConnection, "communicate", "counted around super()", parameters=("self",)),
    Internal(CPWSGIServer, "__init__", "JSONErrorServer's", parameters=("self", "server_adapter")),
    Internal(server.HTTPServer, "ConnectionClass", "JSONErrorConnection is set there"),
    Internal(server.HTTPServer, "ready", "stop() is a no-op before it"),
    Internal(server.HTTPServer, "shutdown_timeout", "the drain's grace, and what is left of it for cheroot's stop"),
    Internal(server.HTTPServer, "timeout", "the socket timeout a DeadlineReader waits at most"),
    Internal(server.HTTPServer, "protocol", "the status line of simple_response"),
    Internal(server.HTTPServer, "stop", "JSONErrorServer drains, then calls it", parameters=("self",)),
    Internal(
        server.HTTPServer, "process_conn", "what is queued on the listener is served", parameters=("self", "conn")
    ),
    Internal(server.HTTPServer, "requests", "its qsize: requests waiting for a thread", assigned_in="__init__"),
    Internal(server.HTTPServer, "socket", "the listening socket, taken out and closed", assigned_in="prepare"),
    Internal(server.HTTPServer, "_connections", "the connection manager", assigned_in="prepare"),
    Internal(
        threadpool.ThreadPool, "qsize", "read as a value ('qsize == 0'): a method would never be 0", kind=property
    ),
    Internal(
        connections.ConnectionManager, "_selector", "the listener is unregistered from it", assigned_in="__init__"
    ),
    Internal(connections._ThreadsafeSelector, "unregister", "by the listener's fileno", parameters=("self", "fileobj")),
    Internal(
        connections.ConnectionManager,
        "_from_server_socket",
        "accepts what is queued",
        parameters=("self", "server_socket"),
    ),
    Internal(errors, "socket_errors_to_ignore", "a write error simple_response swallows"),
]


def test_cheroot_s_internals_are_as_httpserver_uses_them():
    changed = [text for internal in INTERNALS if (text := problem(internal))]
    assert not changed, f"cheroot {cheroot.__version__} changed what httpserver.py uses:\n  " + "\n  ".join(
        [*changed, UPGRADE]
    )


def test_the_reader_s_base_is_the_buffered_reader_it_initialises():
    assert makefile.StreamReader.__bases__ == (_pyio.BufferedReader,), (
        f"StreamReader's bases are now {makefile.StreamReader.__bases__}: super(StreamReader, self).__init__ in "
        f"DeadlineReader no longer reaches _pyio.BufferedReader (the pure-Python one cheroot 11 uses). {UPGRADE}"
    )
    assert CPWSGIHTTPRequest.__mro__[1] is server.HTTPRequest, CPWSGIHTTPRequest.__mro__
    assert server.HTTPServer in CPWSGIServer.__mro__, CPWSGIServer.__mro__


OURS = (
    (httpserver.DeadlineSocketIO, socket.SocketIO),
    (httpserver.DeadlineReader, makefile.StreamReader),
    (httpserver.JSONErrorRequest, CPWSGIHTTPRequest),
    (httpserver.JSONErrorConnection, server.HTTPConnection),
    (httpserver.JSONErrorServer, CPWSGIServer),
)


@pytest.mark.parametrize(("ours", "theirs"), OURS, ids=[ours.__name__ for ours, _ in OURS])
def test_what_httpserver_overrides_is_listed_and_its_own_names_shadow_nothing(ours, theirs):
    """A name of httpserver's class that the parent also has is an override, and listed above
    (so its signature is checked); any other is its own, and a cheroot release that adds the
    same name (a '_wait' or '_idle' on HTTPServer) would be silently shadowed: it fails here."""
    listed = {(internal.owner, internal.name) for internal in INTERNALS}
    own = [name for name in vars(ours) if name != "_abc_impl" and not (name.startswith("__") and name != "__init__")]
    for name in own:
        owners = [cls for cls in theirs.__mro__ if name in vars(cls) and cls is not object]
        if name == "__init__" or not owners:
            continue
        assert any((cls, name) in listed for cls in owners), (
            f"{ours.__name__}.{name} shadows {owners[0].__qualname__}.{name}: list it in INTERNALS if it is meant "
            f"to override it, else rename ours. {UPGRADE}"
        )


def pinned(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M | re.I)
    assert match, f"requirements.txt pins no {package}"
    return match.group(1)


def test_the_installed_cheroot_and_cherrypy_are_the_pinned_ones():
    """INTERNALS were checked against the pinned releases; another one needs them read again."""
    for package, installed in (("cheroot", cheroot.__version__), ("CherryPy", cherrypy.__version__)):
        assert installed == pinned(package), f"{package} {installed} is installed, {pinned(package)} pinned. {UPGRADE}"


class StandIn:
    """A cheroot class as a release might change it: a method renamed, a signature changed, a
    property made a method, an instance attribute no longer set."""

    shutdown_timeout = 5

    def __init__(self, server):
        self.server = server

    def qsize(self):
        return 0

    def stop(self, timeout):
        pass


def test_the_checker_names_what_changed():
    assert problem(Internal(StandIn, "shutdown_timeout", "")) is None
    assert problem(Internal(StandIn, "server", "", assigned_in="__init__")) is None
    assert problem(Internal(StandIn, "process_conn", "drain")) == "StandIn.process_conn is gone (drain)"
    assert (
        problem(Internal(StandIn, "stop", "x", parameters=("self",)))
        == "StandIn.stop('self', 'timeout') was ('self',) (x)"
    )
    assert problem(Internal(StandIn, "qsize", "y", kind=property)) == "StandIn.qsize is a function, not a property (y)"
    assert problem(Internal(StandIn, "_connections", "z", assigned_in="__init__")) == (
        "StandIn._connections is no longer set by __init__() (z)"
    )
    assert problem(Internal(StandIn, "__init__", "w", sets=())) == "StandIn.__init__ now sets ['server'], not [] (w)"
