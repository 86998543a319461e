"""Which MongoDB databases, collections and hosts the service may touch, and clients for them.

Job documents name collections as ``db.collection`` on the configured MongoDB or as a full
``mongodb://host/db.collection`` URI (the classic connector form) whose host is allowed by
configuration. The system databases are never read or written through the API.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pymongo

from defaults import SYSTEM_DATABASES
from exceptions import ForbiddenTarget, InvalidRequest

_DB_FORBIDDEN = re.compile(r'[/\\. "$*<>:|?\x00]')
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
        parsed = urlsplit(spec)
        hosts = _hosts_of(spec)
        allowed = allowed_hosts(params)
        for host, port in hosts:
            if host_key(host, port) not in allowed:
                raise ForbiddenTarget(
                    f"'{field}': MongoDB host {host}:{port or 27017} is not in the configured allowlist"
                )
        namespace = parsed.path.lstrip("/")
        db, _, collection = namespace.partition(".")
        check_namespace(db, collection)
        uri = f"mongodb://{parsed.netloc}/" + (f"?{parsed.query}" if parsed.query else "")
        return CollectionRef(uri, db, collection)
    db, _, collection = spec.partition(".")
    check_namespace(db, collection)
    return CollectionRef(params["mongodb_uri"], db, collection)


def path_ref(db: str, collection: str, params: dict[str, Any]) -> CollectionRef:
    check_namespace(db, collection)
    return CollectionRef(params["mongodb_uri"], db, collection)


class MongoClients:
    """One pymongo client per URI, created on first use and shared (pymongo pools internally)."""

    def __init__(self, timeout_ms: int = 5000):
        self._timeout_ms = timeout_ms
        self._clients: dict[str, pymongo.MongoClient] = {}
        self._lock = threading.Lock()

    def client(self, uri: str) -> pymongo.MongoClient:
        with self._lock:
            client = self._clients.get(uri)
            if client is None:
                client = pymongo.MongoClient(
                    uri, serverSelectionTimeoutMS=self._timeout_ms, connectTimeoutMS=self._timeout_ms
                )
                self._clients[uri] = client
            return client

    def collection(self, ref: CollectionRef) -> pymongo.collection.Collection:
        return self.client(ref.uri)[ref.db][ref.collection]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def redact(uri: str) -> str:
    """A URI fit for a log line or a message: credentials replaced."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return uri.replace(parts.netloc, quote("***") + "@" + parts.netloc.rsplit("@", 1)[-1])
