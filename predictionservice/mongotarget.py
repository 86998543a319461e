"""Which MongoDB databases, collections and hosts the service may touch, and clients for them.

Job documents name collections as ``db.collection`` on the configured MongoDB or as a full
``mongodb://host/db.collection`` URI (the classic connector form) whose host is allowed by
configuration. The system databases are never read or written through the API.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pymongo
import pymongo.errors
from pymongo import uri_parser

from predictionservice.defaults import SYSTEM_DATABASES
from predictionservice.exceptions import ForbiddenTarget, InvalidRequest, shown
from predictionservice.tempcollections import RESERVED_PREFIXES

_DB_FORBIDDEN = re.compile(r'[/\\. "$*<>:|?\x00]')
URI_OPTIONS = frozenset(
    {"authsource", "authmechanism", "replicaset", "directconnection", "readpreference", "retryreads",
     "retrywrites", "w"}
)  # fmt: skip
AUTH_MECHANISMS = frozenset({"DEFAULT", "SCRAM-SHA-1", "SCRAM-SHA-256"})
_MAX_DB = 63
_MAX_NAMESPACE = 255


def check_namespace(db: str, collection: str) -> None:
    """Refuse names MongoDB rejects or the API must not reach (system databases and collections,
    the temporary collections of loads and writes). MongoDB measures names in UTF-8 bytes."""
    db_bytes, collection_bytes = _utf8_length(db, "database"), _utf8_length(collection, "collection")
    if not db or db_bytes > _MAX_DB or _DB_FORBIDDEN.search(db):
        raise InvalidRequest(
            f'database name {shown(db)} is not allowed: 1 to {_MAX_DB} bytes of UTF-8, none of /\\. "$*<>:|?'
        )
    if db.lower() in SYSTEM_DATABASES:
        raise ForbiddenTarget(f"database {db!r} is a system database and is never used by the service")
    if not collection or "$" in collection or "\x00" in collection or collection.startswith("."):
        raise InvalidRequest(f"collection name {shown(collection)} is not allowed: non-empty, no '$' or NUL")
    if collection.startswith("system.") or ".." in collection or collection.endswith("."):
        raise InvalidRequest(f"collection name {shown(collection)} is not allowed")
    if collection.startswith(RESERVED_PREFIXES):
        raise InvalidRequest(
            f"collection name {shown(collection)} is not allowed: names starting "
            f"{' or '.join(RESERVED_PREFIXES)} are the service's temporary collections"
        )
    if db_bytes + 1 + collection_bytes > _MAX_NAMESPACE:
        raise InvalidRequest(f"namespace {shown(db + '.' + collection)} is longer than {_MAX_NAMESPACE} bytes")


# Characters no new name may hold: C0/C1 controls (CR, LF, TAB, ESC ...), format characters
# (bidirectional overrides, zero-width) and the line and paragraph separators U+2028/U+2029. Such
# a name breaks the lines of logs and headers or shows as something else; one MongoDB already
# holds is still read, exported and dropped.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def check_new_name(db: str, collection: str) -> None:
    """Refuse, naming the character, a database or collection name the service would create
    (an upload's target, a job's output) that holds a control character."""
    for what, name in (("database", db), ("collection", collection)):
        bad = next((c for c in name if unicodedata.category(c) in _UNPRINTABLE), None)
        if bad is not None:
            raise InvalidRequest(
                f"{what} name {shown(name)} is not allowed: it holds the control character U+{ord(bad):04X} "
                f"({unicodedata.name(bad, 'unnamed')}); the names the service creates are printable text"
            )


def _utf8_length(name: str, what: str) -> int:
    try:
        return len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ('\ud800') has no UTF-8 form: MongoDB cannot store it
        raise InvalidRequest(f"{what} name {shown(name)} is not valid Unicode text (a lone surrogate)") from None


def host_key(host: str, port: int | None) -> str:
    return f"{host.lower()}:{port or 27017}"


def allowed_hosts(mongodb_uri: str, extra_hosts: Iterable[str]) -> set[str]:
    """The host:port keys a job's own URI may name: the configured MongoDB's seeds and the extra
    entries ('host:port') of mongodb_allowed_hosts."""
    hosts = {host_key(h, p) for h, p in _hosts_of(mongodb_uri)}
    for entry in extra_hosts:
        hosts.update(host_key(h, p) for h, p in _hosts_of(f"mongodb://{entry}/"))
    return hosts


def _hosts_of(uri: str) -> list[tuple[str, int | None]]:
    """(host, port) of each seed of a URI; IPv6 hosts without their brackets."""
    try:
        netloc = urlsplit(uri).netloc.rsplit("@", 1)[-1]
    except ValueError:  # an unbalanced IPv6 bracket
        raise InvalidRequest(f"not a valid MongoDB URI: {shown(redact(uri))}") from None
    result = []
    for part in netloc.split(","):
        try:  # each seed is parsed on its own: '[zz]' or 'x]' raise here, not in the whole URI
            parsed = urlsplit(f"//{part}")
            host, port = parsed.hostname, parsed.port
        except ValueError:
            raise InvalidRequest(f"MongoDB URI with a bad host or port {shown(part)}: {shown(redact(uri))}") from None
        if not host:
            raise InvalidRequest(f"MongoDB URI without a host: {redact(uri)!r}")
        result.append((host, port))
    return result


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _server_key(host: str, port: int | None) -> str:
    """A seed as a server: the loopback names of this machine count as one host."""
    host = host.lower()
    return host_key("loopback" if host in _LOOPBACK else host, port)


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

    def same_target(self, other: CollectionRef) -> bool:
        """Whether both name one collection of one server, however spelt: 'd.bank' and
        'mongodb://<the configured host>/d.bank?w=1' do. Seeds in common mean one server."""
        if self.namespace != other.namespace:
            return False
        mine = {_server_key(h, p) for h, p in _hosts_of(self.uri)}
        return not mine.isdisjoint(_server_key(h, p) for h, p in _hosts_of(other.uri))


@dataclass(frozen=True)
class MongoTargets:
    """The MongoDB a collection named 'db.collection' lives on, and the hosts a job's own
    mongodb:// URI may name: built once from the settings (``config.pick``) by the process that
    loaded them, so resolving a name needs no settings dict."""

    mongodb_uri: str
    mongodb_allowed_hosts: Sequence[str] = ()

    def resolve(self, spec: Any, field: str = "inputCollection") -> CollectionRef:
        """A job's collection spec ('db.collection' or a mongodb:// URI of an allowed host) as a
        CollectionRef, or an error naming the field."""
        return _resolve(self, spec, field)

    def path_ref(self, db: str, collection: str) -> CollectionRef:
        """db.collection on the configured MongoDB, its names checked."""
        check_namespace(db, collection)
        return CollectionRef(self.mongodb_uri, db, collection)


def _resolve(targets: MongoTargets, spec: Any, field: str) -> CollectionRef:
    """A job's collection spec as a CollectionRef, or an error naming the field."""
    if not isinstance(spec, str) or not spec:
        raise InvalidRequest(f"'{field}' must be 'db.collection' or a mongodb:// URI")
    if spec.startswith(("mongodb://", "mongodb+srv://")):
        if spec.startswith("mongodb+srv://"):
            raise ForbiddenTarget(f"'{field}': mongodb+srv URIs are not accepted; name the hosts")
        try:
            parsed = urlsplit(spec)
        except ValueError as exc:  # an unbalanced IPv6 bracket ...
            raise InvalidRequest(f"'{field}': not a valid MongoDB URI ({shown(str(exc))})") from None
        hosts = _hosts_of(spec)
        allowed = allowed_hosts(targets.mongodb_uri, targets.mongodb_allowed_hosts)
        for host, port in hosts:
            if host_key(host, port) not in allowed:
                raise ForbiddenTarget(
                    f"'{field}': MongoDB host {host}:{port or 27017} is not in the configured allowlist"
                )
        db, collection = _split(parsed.path.lstrip("/"), field)
        check_namespace(db, collection)
        if field == "outputCollection":
            check_new_name(db, collection)
        uri = f"mongodb://{parsed.netloc}/" + (f"?{parsed.query}" if parsed.query else "")
        _check_options(uri, field)
        return CollectionRef(uri, db, collection)
    db, collection = _split(spec, field)
    if field == "outputCollection":  # a job's output is created
        check_new_name(db, collection)
    return targets.path_ref(db, collection)


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
        raise InvalidRequest(f"'{field}': not a valid MongoDB URI ({shown(str(exc), 200, quote=False)})") from None
    refused = sorted(name for name in options if name.lower() not in URI_OPTIONS)
    if refused:
        raise ForbiddenTarget(
            f"'{field}': URI option(s) {', '.join(refused)} not accepted; a job's URI may carry only "
            + ", ".join(sorted(URI_OPTIONS))
        )
    mechanism = str(options.get("authMechanism", "DEFAULT")).upper()
    if mechanism not in AUTH_MECHANISMS:
        raise ForbiddenTarget(f"'{field}': authMechanism {mechanism} not accepted (only SCRAM)")
    if str(options.get("w", "")) == "0":
        raise ForbiddenTarget(
            f"'{field}': w=0 (unacknowledged writes) is refused: a job must know its output was written; "
            "leave w out or use w=1 or w=majority"
        )


def check_replica_set(ref: CollectionRef, clients: MongoClients, field: str) -> None:
    """A job URI's replicaSet must name the set its server is in. pymongo leaves out every server
    whose set is another (or none, a standalone server) and waits out the whole selection timeout
    for one that never comes: a client's slip held a thread 5 s and was answered as MongoDB being
    down. One hello to the URI's seed (the connection is cached like any other) tells at once."""
    wanted = uri_parser.parse_uri(ref.uri, warn=False)["options"].get("replicaSet")
    if wanted is None:
        return
    for host, port in _hosts_of(ref.uri):
        netloc = f"[{host}]:{port or 27017}" if ":" in host else f"{host}:{port or 27017}"
        try:
            with clients.lease(f"mongodb://{netloc}/?directConnection=true") as client:
                actual = client.admin.command("hello").get("setName")
        except pymongo.errors.PyMongoError:
            continue  # this seed does not answer: another may, or the read says MongoDB is down
        if actual == wanted:
            return
        found = "is not in a replica set (a standalone server)" if actual is None else f"is in replica set {actual!r}"
        raise InvalidRequest(
            f"'{field}': the URI option replicaSet={shown(wanted)} cannot work: the MongoDB server it names "
            f"{found}; leave replicaSet out of the URI or name the server's own set"
        )


class MongoClients:
    """One pymongo client per URI, created on first use and shared (pymongo pools internally).

    At most ``size`` clients are kept: each holds monitor threads and sockets, and job documents
    may name many URIs (credentials, options), so the least recently used one is dropped. A client
    is only ever used under a lease (``lease``, ``collection``): one dropped while another thread
    still holds it is closed when that lease ends, never under it (a closed pymongo client raises
    InvalidOperation on its next use)."""

    def __init__(self, timeout_ms: int = 5000, size: int = 8):
        self._timeout_ms = timeout_ms
        self._size = size
        self._clients: OrderedDict[str, pymongo.MongoClient] = OrderedDict()
        self._leases: dict[int, int] = {}  # id(client) -> leases held
        self._dropped: dict[int, pymongo.MongoClient] = {}  # out of the cache, closed at their last lease
        self._lock = threading.Lock()

    @contextmanager
    def lease(self, uri: str) -> Iterator[pymongo.MongoClient]:
        """The client of uri, open for as long as the with-block runs."""
        client = self._acquire(uri)
        try:
            yield client
        finally:
            self._release(client)

    @contextmanager
    def collection(self, ref: CollectionRef) -> Iterator[pymongo.collection.Collection]:
        with self.lease(ref.uri) as client:
            yield client[ref.db][ref.collection]

    def _acquire(self, uri: str) -> pymongo.MongoClient:
        idle = []
        with self._lock:
            client = self._clients.get(uri)
            if client is None:
                client = pymongo.MongoClient(
                    uri, serverSelectionTimeoutMS=self._timeout_ms, connectTimeoutMS=self._timeout_ms
                )
                self._clients[uri] = client
            self._clients.move_to_end(uri)
            self._leases[id(client)] = self._leases.get(id(client), 0) + 1
            while len(self._clients) > self._size:
                old = self._clients.popitem(last=False)[1]
                if self._leases.get(id(old)):
                    self._dropped[id(old)] = old
                else:
                    idle.append(old)
        for old in idle:
            old.close()
        return client

    def _release(self, client: pymongo.MongoClient) -> None:
        with self._lock:
            left = self._leases.pop(id(client)) - 1
            if left:
                self._leases[id(client)] = left
                return
            dropped = self._dropped.pop(id(client), None)
        if dropped is not None:
            dropped.close()

    def close(self) -> None:
        with self._lock:
            for client in [*self._clients.values(), *self._dropped.values()]:
                client.close()
            self._clients.clear()
            self._dropped.clear()


_URI_IN_TEXT = re.compile(r"mongodb(?:\+srv)?://\S+")
_ADDRESS_TUPLE = re.compile(r"\('[^']*', \d{1,5}\)")  # pymongo's ('127.0.0.1', 27017)
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|\b\d{1,3}(?:\.\d{1,3}){3}|\b[A-Za-z][\w-]*(?:\.[\w-]+)*):\d{1,5}\b")


def scrub(text: str) -> str:
    """An error text of pymongo or Spark fit to show a client: URIs and host:port pairs of the
    service's own servers replaced ('127.0.0.1:27017: [Errno 111] ...' names no internal host)."""
    text = _ADDRESS_TUPLE.sub("<host>", _URI_IN_TEXT.sub("<mongodb uri>", text))
    return _HOST_PORT.sub("<host>", text)


def redact(uri: str) -> str:
    """A URI fit for a log line or a message: credentials replaced."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return uri.replace(parts.netloc, quote("***") + "@" + parts.netloc.rsplit("@", 1)[-1])
