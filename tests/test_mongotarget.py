"""mongotarget.py: which databases, collections and hosts a request may name, and the clients."""

from urllib.parse import urlsplit

import pymongo.errors
import pytest

from predictionservice.config import pick
from predictionservice.exceptions import ForbiddenTarget, InvalidRequest
from predictionservice.job import redacted
from predictionservice.mongotarget import (
    CollectionRef,
    MongoClients,
    MongoTargets,
    allowed_hosts,
    check_namespace,
    redact,
)

TARGETS = MongoTargets("mongodb://Mongo.Internal:27017/", ["replica.example.com", "other.example.com:27018"])


# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("db", "collection"),
    [
        ("datasets", "bank"),
        ("e2e", "bankResults"),
        ("my-db_2", "a.b.c"),
        ("d" * 63, "c"),
        ("d", "c" * 253),  # a 255-byte namespace
        ("adminx", "users"),
        ("datasets", "system"),
    ],
)
def test_check_namespace_accepts_normal_names(db, collection):
    assert check_namespace(db, collection) is None


@pytest.mark.parametrize("db", ["admin", "local", "config", "ADMIN", "Local", "conFIG"])
def test_system_databases_are_forbidden_in_any_case(db):
    with pytest.raises(ForbiddenTarget) as caught:
        check_namespace(db, "users")
    assert caught.value.message == f"database {db!r} is a system database and is never used by the service"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "db", ["", "a.b", "da$ta", "a b", "a/b", "a\\b", 'a"b', "a*", "a<b", "a:b", "a|b", "a?", "a\x00"]
)
def test_bad_database_names_are_refused(db):
    with pytest.raises(InvalidRequest) as caught:
        check_namespace(db, "c")
    assert caught.value.message.startswith(f"database name {db!r} is not allowed: 1 to 63 bytes of UTF-8")


@pytest.mark.parametrize("db", ["d" * 64, "\u00e9" * 32, "\u00e9" * 63])
def test_a_database_name_longer_than_63_bytes_is_refused(db):
    """MongoDB counts bytes: 63 x 'é' (126 bytes) passed a count of characters (issue 11, 9)."""
    with pytest.raises(InvalidRequest, match="is not allowed: 1 to 63 bytes of UTF-8"):
        check_namespace(db, "c")
    assert check_namespace("\u00e9" * 31, "c") is None


@pytest.mark.parametrize("collection", ["__loading_1_x_mine", "__writing_67a0b1c2_deadbeef_out", "__loading_"])
def test_the_temporary_prefixes_are_reserved(collection):
    """A dataset named like a load's temporary collection was answered 200, then dropped by the
    same request's stale sweep (issue 11, finding 12)."""
    with pytest.raises(InvalidRequest, match="the service's temporary collections"):
        check_namespace("d", collection)
    assert check_namespace("d", "_loading_x") is None and check_namespace("d", "__load") is None


@pytest.mark.parametrize(("db", "collection"), [("d\ud800", "c"), ("d", "c\udfff")])
def test_a_lone_surrogate_in_a_name_is_refused(db, collection):
    with pytest.raises(InvalidRequest, match="not valid Unicode text"):
        check_namespace(db, collection)


@pytest.mark.parametrize("collection", ["", "a$b", "$cmd", "a\x00b", ".hidden"])
def test_collection_names_without_dollar_or_nul(collection):
    with pytest.raises(InvalidRequest) as caught:
        check_namespace("datasets", collection)
    assert caught.value.message == f"collection name {collection!r} is not allowed: non-empty, no '$' or NUL"


@pytest.mark.parametrize("collection", ["system.users", "system.profile", "system.", "a..b", "a."])
def test_system_and_malformed_collections_are_refused(collection):
    with pytest.raises(InvalidRequest) as caught:
        check_namespace("datasets", collection)
    assert caught.value.message == f"collection name {collection!r} is not allowed"


@pytest.mark.parametrize("collection", ["c" * 254, "\u00e9" * 127])
def test_a_namespace_longer_than_255_bytes_is_refused(collection):
    with pytest.raises(InvalidRequest) as caught:
        check_namespace("d", collection)
    assert caught.value.message.startswith("namespace 'd.") and caught.value.message.endswith("longer than 255 bytes")


# ------------------------------------------------------------------------------ resolve


def test_resolve_db_dot_collection_on_the_configured_mongodb():
    ref = TARGETS.resolve("datasets.bank")
    assert ref == CollectionRef("mongodb://Mongo.Internal:27017/", "datasets", "bank")
    assert ref.namespace == "datasets.bank" == str(ref)
    assert TARGETS.resolve("datasets.bank.v2").collection == "bank.v2"
    assert TARGETS.path_ref("e2e", "bank") == CollectionRef("mongodb://Mongo.Internal:27017/", "e2e", "bank")


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (None, InvalidRequest, "'outputCollection' must be 'db.collection' or a mongodb:// URI"),
        ("", InvalidRequest, "'outputCollection' must be 'db.collection' or a mongodb:// URI"),
        (["a.b"], InvalidRequest, "'outputCollection' must be 'db.collection' or a mongodb:// URI"),
        (
            "breast_cancer",
            InvalidRequest,
            "'outputCollection': 'breast_cancer' has no database: expected 'db.collection' (for example "
            "'datasets.breast_cancer', which PUT /datasets/datasets/breast_cancer fills) or a mongodb:// URI",
        ),
        ("admin.users", ForbiddenTarget, "database 'admin' is a system database and is never used by the service"),
        ("datasets.system.users", InvalidRequest, "collection name 'system.users' is not allowed"),
    ],
)
def test_resolve_refuses_bad_specs(spec, error, message):
    with pytest.raises(error) as caught:
        TARGETS.resolve(spec, "outputCollection")
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("spec", "uri", "db", "collection"),
    [
        # the configured host, with and without its (default) port, in any case
        ("mongodb://mongo.internal:27017/datasets.bank", "mongodb://mongo.internal:27017/", "datasets", "bank"),
        ("mongodb://MONGO.internal/datasets.bank", "mongodb://MONGO.internal/", "datasets", "bank"),
        # an extra host listed without a port means its default port
        ("mongodb://replica.example.com/a.b", "mongodb://replica.example.com/", "a", "b"),
        ("mongodb://replica.example.com:27017/a.b", "mongodb://replica.example.com:27017/", "a", "b"),
        # an extra host listed with its port
        ("mongodb://other.example.com:27018/a.b", "mongodb://other.example.com:27018/", "a", "b"),
        # credentials and options are kept for the connection
        (
            "mongodb://user:pw@other.example.com:27018/a.b?authSource=a",
            "mongodb://user:pw@other.example.com:27018/?authSource=a",
            "a",
            "b",
        ),
        (
            "mongodb://mongo.internal,replica.example.com:27017/a.b.c?replicaSet=rs0",
            "mongodb://mongo.internal,replica.example.com:27017/?replicaSet=rs0",
            "a",
            "b.c",
        ),
    ],
)
def test_resolve_uris_with_allowed_hosts(spec, uri, db, collection):
    ref = TARGETS.resolve(spec)
    assert ref == CollectionRef(uri, db, collection)
    assert str(ref) == f"{db}.{collection}"  # never the credentials


@pytest.mark.parametrize(
    ("spec", "host"),
    [
        ("mongodb://evil.example.com/a.b", "evil.example.com:27017"),
        ("mongodb://other.example.com/a.b", "other.example.com:27017"),  # listed with 27018 only
        ("mongodb://mongo.internal:27018/a.b", "mongo.internal:27018"),  # the configured host, another port
        ("mongodb://mongo.internal,evil.example.com/a.b", "evil.example.com:27017"),  # one foreign host is enough
        ("mongodb://mongo.internal@evil.example.com/a.b", "evil.example.com:27017"),  # user info is not a host
    ],
)
def test_resolve_refuses_foreign_hosts(spec, host):
    with pytest.raises(ForbiddenTarget) as caught:
        TARGETS.resolve(spec, "inputCollection")
    assert caught.value.message == f"'inputCollection': MongoDB host {host} is not in the configured allowlist"


def test_resolve_refuses_srv_uris():
    with pytest.raises(ForbiddenTarget) as caught:
        TARGETS.resolve("mongodb+srv://mongo.internal/a.b")
    assert caught.value.message == "'inputCollection': mongodb+srv URIs are not accepted; name the hosts"


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (
            "mongodb://mongo.internal/admin.system.users",
            ForbiddenTarget,
            "database 'admin' is a system database and is never used by the service",
        ),
        (
            "mongodb://mongo.internal/LOCAL.oplog",
            ForbiddenTarget,
            "database 'LOCAL' is a system database and is never used by the service",
        ),
        ("mongodb://mongo.internal/", InvalidRequest, "database name '' is not allowed"),
        ("mongodb://mongo.internal/datasets", InvalidRequest, "'inputCollection': 'datasets' has no database"),
        ("mongodb:///datasets.bank", InvalidRequest, "MongoDB URI without a host: 'mongodb:///datasets.bank'"),
    ],
)
def test_resolve_refuses_bad_namespaces_in_uris(spec, error, message):
    with pytest.raises(error) as caught:
        TARGETS.resolve(spec)
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize("spec", ["mongodb://mongo.internal:abc/a.b", "mongodb://mongo.internal:99999/a.b"])
def test_a_uri_with_a_bad_port_is_an_invalid_request(spec):
    with pytest.raises(InvalidRequest):
        TARGETS.resolve(spec)


@pytest.mark.parametrize(
    "spec", ["mongodb://[::1]:27017,[zz]:27017/a.b", "mongodb://[::1],x]/a.b", "mongodb://[::1]:27017,[::1/a.b"]
)
def test_a_seed_that_is_not_a_host_is_an_invalid_request(spec):
    """Each seed was parsed outside the try: ValueError, a 500 (issue 11, finding 7)."""
    with pytest.raises(InvalidRequest, match=r"not a valid MongoDB URI|bad host or port"):
        MongoTargets(TARGETS.mongodb_uri, ["[::1]:27017"]).resolve(spec)


def test_one_collection_spelt_two_ways_is_the_same_target():
    """'d.bank' and mongodb://<the configured host>/d.bank?w=1 name one collection: a scoring job
    from one into the other replaced its input with its own scores (issue 11, finding 14)."""
    targets = MongoTargets("mongodb://127.0.0.1:27017/", ["10.0.0.5", "[::1]"])
    plain = targets.resolve("d.bank")
    for spelling in (
        "mongodb://127.0.0.1:27017/d.bank?w=1",
        "mongodb://127.0.0.1/d.bank",
        "mongodb://user:pw@127.0.0.1:27017/d.bank?authSource=admin",
        "mongodb://[::1]:27017/d.bank",
        "mongodb://10.0.0.5,127.0.0.1/d.bank?replicaSet=rs0",
    ):
        assert plain.same_target(targets.resolve(spelling)), spelling
        assert targets.resolve(spelling).same_target(plain), spelling
    assert not plain.same_target(targets.resolve("d.bank2"))
    assert not plain.same_target(targets.resolve("mongodb://10.0.0.5/d.bank"))


def test_unacknowledged_writes_are_refused():
    with pytest.raises(ForbiddenTarget, match="w=0 \\(unacknowledged writes\\) is refused"):
        TARGETS.resolve("mongodb://mongo.internal/d.out?w=0", "outputCollection")
    assert TARGETS.resolve("mongodb://mongo.internal/d.out?w=majority").db == "d"


def test_an_allowlisted_ipv6_host_is_accepted():
    targets = MongoTargets(TARGETS.mongodb_uri, ["[::1]:27017"])
    assert targets.resolve("mongodb://[::1]:27017/a.b").namespace == "a.b"


def test_allowed_hosts():
    assert allowed_hosts(TARGETS.mongodb_uri, TARGETS.mongodb_allowed_hosts) == {
        "mongo.internal:27017",
        "replica.example.com:27017",
        "other.example.com:27018",
    }
    assert allowed_hosts("mongodb://u:p@h1:1,h2/", []) == {
        "h1:1",
        "h2:27017",
    }


# ------------------------------------------------------------------------------ redact


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mongodb://user:s3cret@h:1/db", "mongodb://%2A%2A%2A@h:1/db"),
        ("mongodb://user:p@ss@h1:1,h2:2/?authSource=admin", "mongodb://%2A%2A%2A@h1:1,h2:2/?authSource=admin"),
        ("mongodb://h:27017/", "mongodb://h:27017/"),
    ],
)
def test_redact_hides_credentials(uri, expected):
    redacted = redact(uri)
    assert redacted == expected
    assert "s3cret" not in redacted and "user" not in redacted


# ------------------------------------------------------------------------------ clients


def test_mongo_clients_reach_the_resolved_collection(base_params, mongo_client, mongo_db):
    ref = pick(MongoTargets, base_params).resolve(f"{mongo_db.name}.things")
    assert ref.uri == base_params["mongodb_uri"]
    clients = MongoClients(timeout_ms=5000)
    try:
        with clients.collection(ref) as collection:
            collection.insert_one({"_id": 1, "x": "through MongoClients"})
            with clients.lease(ref.uri) as client:
                assert client is collection.database.client  # one client per URI
        assert mongo_client[mongo_db.name]["things"].find_one({"_id": 1}) == {"_id": 1, "x": "through MongoClients"}
    finally:
        clients.close()
    assert clients._clients == {}


def test_mongo_clients_reach_an_allowed_uri(base_params, mongo_client, mongo_db):
    host_port = urlsplit(base_params["mongodb_uri"]).netloc.rsplit("@", 1)[-1]
    ref = pick(MongoTargets, base_params).resolve(f"mongodb://{host_port}/{mongo_db.name}.viauri")
    assert ref.uri == f"mongodb://{host_port}/"
    mongo_client[mongo_db.name]["viauri"].insert_one({"_id": "a", "n": 5})
    clients = MongoClients()
    try:
        with clients.collection(ref) as collection:
            assert collection.find_one({"_id": "a"}) == {"_id": "a", "n": 5}
    finally:
        clients.close()


def test_a_job_uri_may_not_carry_options_that_read_files_or_fetch_credentials(base_params):
    host = base_params["mongodb_uri"].split("//", 1)[1].rstrip("/")
    for option in ("tls=true&tlsCAFile=/etc/passwd", "authMechanism=MONGODB-AWS", "authMechanism=GSSAPI"):
        with pytest.raises(ForbiddenTarget, match="not accepted"):
            pick(MongoTargets, base_params).resolve(f"mongodb://{host}/db.c?{option}")
    with pytest.raises(InvalidRequest, match="not a valid MongoDB URI"):
        pick(MongoTargets, base_params).resolve(f"mongodb://{host}/db.c?w=banana&retryWrites=maybe")
    with pytest.raises(InvalidRequest, match="not a valid MongoDB URI"):
        pick(MongoTargets, base_params).resolve("mongodb://[::1/db.c")
    assert pick(MongoTargets, base_params).resolve(f"mongodb://u:p@{host}/db.c?authSource=admin&w=1").db == "db"


def test_credentials_never_reach_a_stored_job_document():
    job = {"name": "X", "inputCollection": "mongodb://alice:s3cret@h:1/db.c", "outputCollection": "db.out", "n": 1}
    shown = redacted(job)  # predictionservice.job: what a job's record and model keep
    assert "s3cret" not in str(shown) and shown["inputCollection"] == "mongodb://%2A%2A%2A@h:1/db.c"
    assert shown["outputCollection"] == "db.out" and shown["n"] == 1 and job["inputCollection"].count("s3cret") == 1


def test_the_client_cache_is_bounded_and_closes_what_it_drops(mongo_uri):
    clients = MongoClients(timeout_ms=2000, size=3)
    made = []
    for i in range(5):
        with clients.lease(f"{mongo_uri}?appname=c{i}") as client:
            made.append(client)
    assert made[4].admin.command("ping")["ok"] == 1
    with clients.lease(f"{mongo_uri}?appname=c4") as client:
        assert client is made[4]
    assert len(clients._clients) == 3
    with pytest.raises(pymongo.errors.InvalidOperation):
        made[0].admin.command("ping")  # closed when it was dropped
    clients.close()


def test_a_client_dropped_while_leased_stays_open_until_its_lease_ends(mongo_uri, mongo_db):
    """Issue 11, finding 18: nine job URIs at once dropped a client another request was using,
    and closed it under that request (InvalidOperation, a 500)."""
    clients = MongoClients(timeout_ms=2000, size=2)
    ref = CollectionRef(f"{mongo_uri}?appname=busy", mongo_db.name, "busy")
    try:
        with clients.collection(ref) as busy:
            for i in range(9):  # other requests, each with a URI of its own, come and go meanwhile
                with clients.lease(f"{mongo_uri}?appname=other{i}") as other:
                    other.admin.command("ping")
            assert ref.uri not in clients._clients  # dropped from the cache ...
            busy.insert_one({"_id": 1})  # ... and still open for its lease
        with pytest.raises(pymongo.errors.InvalidOperation):
            busy.find_one({})  # closed once the lease ended
        assert list(clients._dropped) == []
    finally:
        clients.close()
