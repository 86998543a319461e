"""Which MongoDB databases, collections and hosts the service may touch, and clients for them.

Job documents name collections as ``db.collection`` on the configured MongoDB or as a full
``mongodb://host/db.collection`` URI (the classic connector form) whose host is allowed by
configuration. The system databases are never read or written through the API.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pymongo
import pymongo.errors
from pymongo import uri_parser

from predictionservice.defaults import SYSTEM_DATABASES
from predictionservice.exceptions import ForbiddenTarget, InvalidRequest

_DB_FORBIDDEN = re.compile(r'[/\\. "$*<>:|?\x00]')
URI_OPTIONS = frozenset(
    {"authsource", "authmechanism", "replicaset", "directconnection", "readpreference", "retryreads",
     "retrywrites", "w"}
)  # fmt: skip
AUTH_MECHANISMS = frozenset({"DEFAULT", "SCRAM-SHA-1", "SCRAM-SHA-256"})
_MAX_DB = 63
_MAX_NAMESPACE = 255


def check_namespace(db: str, collection: str) -> None:
    """Refuse names MongoDB rejects or the API must not reach (system databases and collections)."""
    if not db or len(db) > _MAX_DB or _DB_FORBIDDEN.search(db):
        raise InvalidRequest(f'database name {db!r} is not allowed: 1 to {_MAX_DB} characters, none of /\\. "$*<>:|?')
    if db.lower() in SYSTEM_DATABASES:
        raise ForbiddenTarget(f"database {db!r} is a system database and is never used by the service")
    if not collection or "$" in collection or "\x00" in collection or collection.startswith("."):
        raise InvalidRequest(f"collection name {collection!r} is not allowed: non-empty, no '$' or NUL")
    if collection.startswith("system.") or ".." in collection or collection.endswith("."):
        raise InvalidRequest(f"collection name {collection!r} is not allowed")
    if len(db) + 1 + len(collection.encode()) > _MAX_NAMESPACE:
        raise InvalidRequest(f"namespace {db}.{collection} is longer than {_MAX_NAMESPACE} bytes")


def host_key(host: str, port: int | None) -> str:
    return f"{host.lower()}:{port or 27017}"


def allowed_hosts(params: dict[str, Any]) -> set[str]:
    hosts = {host_key(h, p) for h, p in _hosts_of(params["mongodb_uri"])}
    for entry in params["mongodb_allowed_hosts"]:
        hosts.update(host_key(h, p) for h, p in _hosts_of(f"mongodb://{entry}/"))
    return hosts


def _hosts_of(uri: str) -> list[tuple[str, int | None]]:
    """(host, port) of each seed of a URI; IPv6 hosts without their brackets."""
    netloc = urlsplit(uri).netloc.rsplit("@", 1)[-1]
    result = []
    for part in netloc.split(","):
        parsed = urlsplit(f"//{part}")
        try:
            port = parsed.port
        except ValueError:
            raise InvalidRequest(f"MongoDB URI with a bad port: {redact(uri)!r}") from None
        if not parsed.hostname:
            raise InvalidRequest(f"MongoDB URI without a host: {redact(uri)!r}")
        result.append((parsed.hostname, port))
    return result


@dataclass(frozen=True)
class CollectionRef:
    """A resolved collection: where (uri), which db and collection; safe to pickle to executors."""

    uri: str
    db: str
    collection: str

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"

    def __str__(self) -> str:  # how messages name it; never shows credentials
        return self.namespace


def resolve(spec: Any, params: dict[str, Any], field: str = "inputCollection") -> CollectionRef:
    """A job's collection spec as a CollectionRef, or an error naming the field."""
    if not isinstance(spec, str) or not spec:
        raise InvalidRequest(f"'{field}' must be 'db.collection' or a mongodb:// URI")
    if spec.startswith(("mongodb://", "mongodb+srv://")):
        if spec.startswith("mongodb+srv://"):
            raise ForbiddenTarget(f"'{field}': mongodb+srv URIs are not accepted; name the hosts")
        try:
            parsed = urlsplit(spec)
        except ValueError as exc:  # an unbalanced IPv6 bracket ...
            raise InvalidRequest(f"'{field}': not a valid MongoDB URI ({exc})") from None
        hosts = _hosts_of(spec)
        allowed = allowed_hosts(params)
        for host, port in hosts:
            if host_key(host, port) not in allowed:
                raise ForbiddenTarget(
                    f"'{field}': MongoDB host {host}:{port or 27017} is not in the configured allowlist"
                )
        db, collection = _split(parsed.path.lstrip("/"), field)
        check_namespace(db, collection)
        uri = f"mongodb://{parsed.netloc}/" + (f"?{parsed.query}" if parsed.query else "")
        _check_options(uri, field)
        return CollectionRef(uri, db, collection)
    db, collection = _split(spec, field)
    return path_ref(db, collection, params)


def _split(namespace: str, field: str) -> tuple[str, str]:
    """'db.collection' as its two names; a name without a dot is the commonest slip (a
    collection named without its database), so the answer shows the form expected."""
    db, dot, collection = namespace.partition(".")
    if not dot and db:
        raise InvalidRequest(
            f"'{field}': {db[:100]!r} has no database: expected 'db.collection' (for example "
            f"'datasets.{db[:50]}', which PUT /datasets/datasets/{db[:50]} fills) or a mongodb:// URI"
        )
    return db, collection


def _check_options(uri: str, field: str) -> None:
    """A job's own URI may only carry harmless options: none that reads a file on the server
    (tlsCAFile ...), fetches credentials elsewhere (MONGODB-AWS, GSSAPI, OIDC) or adds hosts."""
    try:
        options = uri_parser.parse_uri(uri, warn=False)["options"]
    except (pymongo.errors.PyMongoError, ValueError) as exc:
        raise InvalidRequest(f"'{field}': not a valid MongoDB URI ({str(exc)[:200]})") from None
    refused = sorted(name for name in options if name.lower() not in URI_OPTIONS)
    if refused:
        raise ForbiddenTarget(
            f"'{field}': URI option(s) {', '.join(refused)} not accepted; a job's URI may carry only "
            + ", ".join(sorted(URI_OPTIONS))
        )
    mechanism = str(options.get("authMechanism", "DEFAULT")).upper()
    if mechanism not in AUTH_MECHANISMS:
        raise ForbiddenTarget(f"'{field}': authMechanism {mechanism} not accepted (only SCRAM)")


def path_ref(db: str, collection: str, params: dict[str, Any]) -> CollectionRef:
    check_namespace(db, collection)
    return CollectionRef(params["mongodb_uri"], db, collection)


class MongoClients:
    """One pymongo client per URI, created on first use and shared (pymongo pools internally).

    At most ``size`` clients are kept: each holds monitor threads and sockets, and job documents
    may name many URIs (credentials, options), so the least recently used one is closed."""

    def __init__(self, timeout_ms: int = 5000, size: int = 8):
        self._timeout_ms = timeout_ms
        self._size = size
        self._clients: OrderedDict[str, pymongo.MongoClient] = OrderedDict()
        self._lock = threading.Lock()

    def client(self, uri: str) -> pymongo.MongoClient:
        evicted = []
        with self._lock:
            client = self._clients.get(uri)
            if client is None:
                client = pymongo.MongoClient(
                    uri, serverSelectionTimeoutMS=self._timeout_ms, connectTimeoutMS=self._timeout_ms
                )
                self._clients[uri] = client
                while len(self._clients) > self._size:
                    evicted.append(self._clients.popitem(last=False)[1])
            self._clients.move_to_end(uri)
        for old in evicted:
            old.close()
        return client

    def collection(self, ref: CollectionRef) -> pymongo.collection.Collection:
        return self.client(ref.uri)[ref.db][ref.collection]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def redact_job(job: dict[str, Any]) -> dict[str, Any]:
    """A job document fit to store and show: credentials in its collection URIs replaced."""
    return {k: redact(v) if k in ("inputCollection", "outputCollection") and isinstance(v, str) else v
            for k, v in job.items()}  # fmt: skip


def redact(uri: str) -> str:
    """A URI fit for a log line or a message: credentials replaced."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return uri.replace(parts.netloc, quote("***") + "@" + parts.netloc.rsplit("@", 1)[-1])
