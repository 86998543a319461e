"""What tests share besides fixtures: the repository's paths and job document, API.md's route
table, the real service run as subprocesses (``Service``) and small Mongo helpers. Tests import
from here; conftest.py only holds fixtures."""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import math
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pymongo
import redis
import requests
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from localservers import embedded
from localservers.serviceprocesses import ServiceProcesses
from predictionservice import sampledata
from predictionservice.config import load_parameters
from predictionservice.mongotarget import CollectionRef
from predictionservice.monitor import binned

ROOT = Path(__file__).resolve().parent.parent
BANK_CSV = sampledata.find_bank_csv(os.environ.get("BANK_CSV"))


def ref(collection) -> CollectionRef:
    """The CollectionRef of a pymongo collection of the test server."""
    client = collection.database.client
    host, port = client.address
    return CollectionRef(f"mongodb://{host}:{port}/", collection.database.name, collection.name)


JOB = json.loads((ROOT / "job.json").read_text())
EXAMPLES = ROOT / "examples"
# examples/random_forest_xor.json on a one-point grid: a small forest with probabilities, quickly
XOR_JOB = {**json.loads((EXAMPLES / "random_forest_xor.json").read_text()), "numTrees": [10], "maxDepth": [4]}
TOKEN = "s3cret-token"  # the token of the token_service fixture
FINAL = ("COMPLETED", "FAILED")


def served_routes() -> dict[str, set[str]]:
    """The API's routes as the app serves them: its url_map, read as /openapi.json reads it (the
    pages and the slashless twins left out), path -> methods (HEAD is implied by GET and not
    listed). Nothing is written by hand: a test holds it against API.md, and the document's paths
    against it."""
    from modelservice import modelservice
    from web.meta import api_routes

    table: dict[str, set[str]] = {}
    for route in api_routes(modelservice(load_parameters(environ={})).url_map):
        table.setdefault(route.path, set()).add(route.method)
    return table


API_ROUTES = served_routes()

# Routes docs/API.md already names that this service does not answer yet, with the issue that
# brings them. The route-table test holds API.md == API_ROUTES | NOT_YET_SERVED, less
# NOT_YET_IN_CONTRACT, so this list can only shrink by serving a route, and a route missing from
# both is caught.
NOT_YET_SERVED: dict[str, set[str]] = {}


# Routes this service answers (and /openapi.json documents) that docs/API.md, the team's contract
# copied verbatim, does not name yet: docs/http-api.md's route table describes them meanwhile.
NOT_YET_IN_CONTRACT = {
    "/jobs/{job_id}": {"delete"},  # issue 25, 3.8: cancel a job
    "/models/compare": {"post"},  # issue 27: the compare view's models scored on the same held-out rows
    # issue 22, named models: routes API.md names in its prose, not as "METHOD /path" headings
    "/registry/{name}/aliases/{alias}": {"delete"},  # "DELETE removes it"
    "/registry/{name}/schedule": {"get", "delete"},  # "GET shows it ...; DELETE stops it"
    "/registry/{name}/traffic": {"get", "delete"},  # "DELETE ends it"; GET shows it
    "/v2/models/{key}/versions/{version}": {"get"},  # "/v2/models/<name>/versions/<v>/..."
    "/v2/models/{key}/versions/{version}/ready": {"get"},
    "/v2/models/{key}/versions/{version}/infer": {"post"},
}


def stored_model(client, prefix: str, document: dict) -> Iterator[str]:
    """The document stored as a model under a key of its own (prefix-…), deleted afterwards: a
    fixture's body, for pages and routes that read models without training one."""
    from predictionservice.modelstore import ModelStore
    from predictionservice.redisclient import connect

    key = f"{prefix}-{uuid.uuid4().hex[:8]}"
    params = client.params
    store = ModelStore(connect(params["redis_url"], params["models_db"]), params["redis_key_prefix"])
    store.save(key, {**document, "model_key": key})
    yield key
    store.delete(key)


def bar_percentages(text: str) -> list[int]:
    """The percentages a tqdm bar showed, frame by frame, in what it wrote."""
    return [int(p) for p in re.findall(r"(\d+)%\|", text)]


class Service(ServiceProcesses):
    """A real worker process and a real web server (CherryPy on loopback) on this session's
    Redis and MongoDB, driven over HTTP with requests."""

    def __init__(self, workdir: Path, params: dict, *, worker: bool = True):
        params = {**params, "port": embedded.free_port()}
        params_file = workdir / "parameters.json"
        params_file.write_text(json.dumps(params))
        # A module that must never be imported: it leaves a mark if it is (see test_flow_training).
        canary = workdir / "canary"
        canary.mkdir(exist_ok=True)
        (canary / "canary_algorithm.py").write_text(
            f"open({str(canary / 'imported')!r}, 'w').write('imported')\nclass canary_algorithm: pass\n"
        )
        self.canary_mark = canary / "imported"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URI", "PORT", "AUTH_TOKEN")}
        env["PYTHONPATH"] = str(canary)
        super().__init__(
            params, params_file, workdir, env, worker=worker, worker_name=f"test-{uuid.uuid4().hex[:6]}@%h"
        )
        try:
            self.start()
            self.wait_healthy(timeout=90)
        except BaseException:  # a failed start, or the run interrupted meanwhile: no fixture will stop it
            self.stop()
            raise

    def logged(self, condition, timeout: float = 10.0) -> str:
        """The web server's log once condition(log) holds: its access log is written by a
        thread of its own, a moment after the answer went out."""
        deadline = time.monotonic() + timeout
        while not condition(log := self.log("web")):
            assert time.monotonic() < deadline, f"not in the web server's log after {timeout} s:\n{log[-2000:]}"
            time.sleep(0.05)
        return log

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def wait_job(self, job_id: str, timeout: float = 600.0, path: str = "/jobs/") -> tuple[dict, list[dict]]:
        """The final status of a job (polled at path) and its history (every step it took)."""
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            response = self.get(path + job_id)
            assert response.status_code == 200, response.text
            status = response.json()
            if status["status"] in FINAL:
                history = self.get(f"/jobs/{job_id}", params={"history": "1"}).json()["history"]
                return status, history
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} not final after {timeout}s; last: {status}\n{self.log('worker')[-3000:]}")

    def train(self, job: dict) -> tuple[dict, list[dict]]:
        response = self.post("/train/", json=job)
        assert response.status_code == 202, response.text
        return self.wait_job(response.json()["job_id"], path="/training/status/")


# Redis databases of the stacks that must not share a queue with the session's service (each takes
# the broker db given and the next one for its models): the reliability tests 2 and 4, the Spark
# cluster 6, several workers 10, web replicas 12; db 9 is the stores' tests'.
def private_stack(tmp_path_factory, base_params: dict, name: str, broker_db: int, *, worker: bool = True, **overrides):
    """A worker and a web server of their own on the session's servers, on Redis databases of
    their own, so their worker never takes the session service's jobs."""
    from predictionservice.redisclient import with_db

    params = {**base_params, "redis_url": with_db(base_params["redis_url"], broker_db),
              "models_db": broker_db + 1, **overrides}  # fmt: skip
    return Service(tmp_path_factory.mktemp(name), params, worker=worker)


class KillableMongo:
    """A SecantusDB server process of a test's own, SIGKILLed and restarted on its data dir (the
    stores' fault tests)."""

    def __init__(self, data_dir: Path):
        self.port, self.data_dir = embedded.free_port(), data_dir
        self.server = embedded.start_mongo(self.port, data_dir, use_mongod=False)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, timeout_ms: int = 1500) -> pymongo.MongoClient:
        return pymongo.MongoClient(self.server.url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)

    def kill(self) -> None:
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.stop()  # reaps it

    def restart(self) -> None:
        self.server = embedded.start_mongo(self.port, self.data_dir, use_mongod=False)

    def stop(self) -> None:
        self.server.stop()


E2E_BANK = "e2e.bank"


def training_pair(parser, record) -> tuple[list[float], float]:
    """(features, label) of a training record, the classic parse_line(record): the features are
    read first, so the first bad field named is the one the Spark encoding names."""
    return parser.encode_one(record), parser.encode_label(record)


# ----------------------------------------------------------------- hostile requests, raw HTTP

RECORD = {
    "age": 41, "job": "management", "marital": "married", "education": "tertiary", "default": "no",
    "balance": 1200, "housing": "yes", "loan": "no", "contact": "cellular", "day": 15, "month": "may",
    "duration": 420, "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown",
}  # fmt: skip
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+|\bline \d+, in \w+')
JSON_TYPE = {"Content-Type": "application/json"}
CSV_TYPE = {"Content-Type": "text/csv"}
MAX_BODY = 4 * 1024 * 1024  # the default max_body_bytes the session's service runs with
MAX_DATASET = 512 * 1024 * 1024
MAX_ANSWER = 16 * 1024  # an error never echoes a huge id, key, path or field name back whole

# Placeholders a case's path or body may hold, filled in from the session: the trained model's
# key (also its training job's id), the configured MongoDB's host:port, the canary's port.
# A stored logistic model on one feature x (y = yes from x > 0.5): for tests that need a model
# to serve or score, not to train.
ONE_FEATURE_MODEL = {
    "name": "LogisticRegressionWrapper",
    "schema": {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "x"}]},
    "coefficients": [2.0],
    "intercept": -1.0,
    "numFeatures": 1,
    "numClasses": 2,
    "created_at": "2024-01-01T00:00:00Z",
}

# Two versions of a named model that answer x = 0.4 differently: the first no, the second yes.
SAYS_NO_AT_04 = {**ONE_FEATURE_MODEL, "task": "binary", "metrics": {"auc": 0.7}}
SAYS_YES_AT_04 = {**SAYS_NO_AT_04, "intercept": 0.0, "metrics": {"auc": 0.9}}


@contextmanager
def named_model(params: dict, versions: tuple[dict, ...] = (SAYS_NO_AT_04, SAYS_YES_AT_04),
                prefix: str = "named") -> Iterator[tuple[str, list[str]]]:  # fmt: skip
    """A name of its own in params' model store (Redis db models_db) whose versions are the
    models given, stored as training stores them (1 is production, the last one candidate), and
    removed afterwards with its models: (name, model keys)."""
    from predictionservice.modelstore import ModelStore
    from predictionservice.redisclient import connect
    from predictionservice.registry import Registry

    store = ModelStore(connect(params["redis_url"], params["models_db"]), params.get("redis_key_prefix", ""))
    registry = Registry(store)
    name, keys = f"{prefix}-{uuid.uuid4().hex[:8]}", [uuid.uuid4().hex for _ in versions]
    for key, model in zip(keys, versions, strict=True):
        registry.add_version(name, key, model)
    try:
        yield name, keys
    finally:
        if name in registry.names():
            registry.delete_name(name)
        for key in keys:
            store.delete(key)


MODEL, MONGO, CANARY = "@MODEL@", "@MONGO@", "@CANARY@"
# A stored model small enough to write by hand: logistic regression on one feature x, label y.
TINY_MODEL = {
    "name": "LogisticRegressionWrapper",
    "schema": {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "x"}]},
    "coefficients": [1.0],
    "intercept": 0.0,
    "numFeatures": 1,
    "numClasses": 2,
    "created_at": "2024-01-01T00:00:00Z",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
    content_length: int | None = None,
) -> Answer:
    """One request exactly as given: path unnormalised, body as bytes (chunked on request),
    Content-Length as given (a header-only claim when content_length is set and body is None)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif content_length is not None:
            connection.putheader("Content-Length", str(content_length))
        elif body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        try:
            if body is not None and chunked:
                for start in range(0, len(body), 1 << 16):
                    part = body[start : start + (1 << 16)]
                    connection.send(b"%x\r\n%s\r\n" % (len(part), part))
                connection.send(b"0\r\n\r\n")
            elif body is not None:
                connection.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) before the whole body was sent and closed its side
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def assert_error_answer(answer: Answer, status: int, code: str | None = None, *, method: str = "GET") -> None:
    """The status API.md gives, the error shape, no traceback, and Allow on a 405."""
    text = answer.body.decode("utf-8", "replace")
    assert answer.status == status, f"expected {status}, got {answer.status}: {text[:500]}"
    assert not TRACEBACK.search(text), text[:2000]
    assert len(answer.body) <= MAX_ANSWER, f"a {len(answer.body)}-byte error echoes the request: {text[:300]}"
    if status == 405:
        allowed = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
        assert allowed and method not in allowed, answer.headers
    if method == "HEAD":
        assert answer.body == b""
        return
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], list), error
    assert set(answer.json()) == {"error"}
    if code is not None:
        assert error["code"] == code, error


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str | None = None
    body: Any = None  # bytes as they are; anything else is sent as JSON
    headers: dict[str, str] | None = None
    chunked: bool = False
    content_length: int | None = None

    def payload(self, fill: dict[str, str]) -> bytes | None:
        if self.body is None:
            return None
        raw = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        for placeholder, value in fill.items():
            raw = raw.replace(placeholder.encode(), value.encode())
        return raw

    def url_path(self, fill: dict[str, str]) -> str:
        path = self.path
        for placeholder, value in fill.items():
            path = path.replace(placeholder, value)
        return path


def job(**changes: Any) -> dict[str, Any]:
    return {**JOB, "inputCollection": E2E_BANK, **changes}


def job_schema(**changes: Any) -> dict[str, Any]:
    return job(schema={**JOB["schema"], **changes})


def first_feature(**changes: Any) -> dict[str, Any]:
    return job_schema(features=[{**JOB["schema"]["features"][0], **changes}, *JOB["schema"]["features"][1:]])


def predict(**changes: Any) -> dict[str, Any]:
    return {"modelkey": MODEL, "record": RECORD, **changes}


def predictall(**changes: Any) -> dict[str, Any]:
    return {"modelkey": MODEL, "inputCollection": E2E_BANK, "outputCollection": "hostile.out", **changes}


def deep(levels: int, opening: bytes, closing: bytes, inner: bytes = b"1") -> bytes:
    return opening * levels + inner + closing * levels


def cut(document: dict[str, Any]) -> bytes:
    raw = json.dumps(document).encode()
    return raw[: len(raw) // 2]


def post(id: str, path: str, body: Any, status: int = 400, code: str | None = None, **kw: Any) -> Case:
    return Case(id, "POST", path, status, code, body, {**JSON_TYPE, **kw.pop("headers", {})}, **kw)


BIG_RECORDS = {"modelkey": MODEL, "records": [RECORD] * (MAX_BODY // 250)}  # ~4.7 MB of JSON
JOB_ID_404 = "0123456789abcdef0123456789abcdef"


@dataclass
class Snapshot:
    health: dict
    models: list
    stored: dict  # each model's detail, as GET /models/<key> answers it
    bank_count: int
    bank_checksum: str
    namespaces: dict
    jobs: int


def checksum(collection) -> str:
    """Every document's BSON in _id order, hashed, as the server sends it (not decoded and
    encoded again here: for the bank, 45,211 documents before and after every battery)."""
    raw = collection.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    digest = hashlib.sha256()
    for document in raw.find({}, sort=[("_id", 1)]):
        digest.update(document.raw)
    return digest.hexdigest()


def job_records(service) -> int:
    client = redis.Redis.from_url(service.params["redis_url"])
    try:
        return sum(1 for key in client.scan_iter("job:*", count=1000) if not key.endswith(b":history"))
    finally:
        client.close()


def snapshot(service, mongo_client) -> Snapshot:
    health = service.get("/health").json()
    models = service.get("/models/").json()["models"]

    stored = {m["model_key"]: service.get(f"/models/{m['model_key']}").json() for m in models}
    bank = mongo_client["e2e"]["bank"]
    namespaces = {
        db: sorted(mongo_client[db].list_collection_names())
        for db in mongo_client.list_database_names()
        if db not in ("admin", "local", "config")
    }
    return Snapshot(
        health={k: health[k] for k in ("status", "redis", "mongo")},
        models=sorted(models, key=lambda m: m["model_key"]),
        stored=stored,
        bank_count=service.get("/datasets/e2e/bank").json()["count"],
        bank_checksum=checksum(bank),
        namespaces=namespaces,
        jobs=job_records(service),
    )


def check_refused(service, fill: dict[str, str], case: Case) -> None:
    """A hostile case is answered with its 4xx status and the error shape, nothing more."""
    answer = send(
        service.url,
        case.method,
        case.url_path(fill),
        case.payload(fill),
        case.headers,
        chunked=case.chunked,
        content_length=case.content_length,
    )
    assert 400 <= case.status < 500
    assert_error_answer(answer, case.status, case.code, method=case.method)


def check_answered(service, fill: dict[str, str], case: Case) -> None:
    """A HEAD or a GET with garbage in its query is a 200 JSON answer (HEAD: no body)."""
    answer = send(service.url, case.method, case.url_path(fill), None, case.headers)
    assert answer.status == 200, answer.body[:500]
    assert answer.headers.get("content-type", "").startswith("application/json")
    if case.method == "HEAD":
        assert answer.body == b""
        assert int(answer.headers.get("content-length", "1")) > 0  # what the GET would send
    else:
        answer.json()


def check_unchanged(service, mongo_client, before: Snapshot, canary) -> None:
    """After a battery: models, data, databases and job records as they were, no foreign host
    contacted, no algorithm imported by name, the service healthy with its worker."""
    after = snapshot(service, mongo_client)
    assert after.health == {"status": "ok", "redis": "ok", "mongo": "ok"}
    assert after.models == before.models
    assert after.stored == before.stored
    assert after.bank_count == before.bank_count == 45211
    assert after.bank_checksum == before.bank_checksum
    assert after.namespaces == before.namespaces  # nothing created (no 'e2e%2Fbank', no 'hostile')
    assert after.jobs == before.jobs  # no job was queued
    assert canary[1] == [], f"the service connected to the canary 'foreign' host: {canary[1]}"
    assert not service.canary_mark.exists()  # no algorithm module was imported by name
    assert service.get("/health").json()["workers"] >= 1


def hostile_battery(cases: list[Case], floor: int, ok_cases: tuple[Case, ...] = ()) -> tuple:
    """A module's battery as its test functions, in the order pytest must run them:

    every case refused with its status and the error shape (``check_refused``), every ok case
    answered (``check_answered``), enough distinct cases, and, last, nothing changed
    (``check_unchanged``; skipped when the battery was not run in full).

    Each case is sent byte for byte with http.client (requests would normalise paths and bodies)
    to the real service (worker + CherryPy web server, Redis, MongoDB). Foreign hosts (10.1.2.3,
    example.com, mongodb+srv) only appear in bodies the service must refuse before it connects
    anywhere; every packet goes to 127.0.0.1, and a canary listener stands for a foreign host."""
    import pytest

    ran: set[str] = set()

    @pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in cases])
    def test_a_hostile_request_is_refused_with_the_error_shape(service, fill, case):
        check_refused(service, fill, case)
        ran.add(case.id)

    @pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ok_cases])
    def test_head_and_garbage_queries_on_get_routes_answer_200(service, fill, case):
        check_answered(service, fill, case)
        ran.add(case.id)

    def test_the_battery_has_enough_cases():
        every = [c.id for c in [*cases, *ok_cases]]
        assert len(set(every)) == len(every), "duplicate case ids"
        assert len(cases) >= floor

    def test_after_the_battery_nothing_changed(service, mongo_client, before, canary):
        """Runs after the battery in its module (file order). Run alone, it has nothing to check."""
        if len(ran) < len(cases) + len(ok_cases):
            pytest.skip("the hostile battery did not run in full in this session")
        check_unchanged(service, mongo_client, before, canary)

    answered = (test_head_and_garbage_queries_on_get_routes_answer_200,) if ok_cases else ()
    return (
        test_a_hostile_request_is_refused_with_the_error_shape,
        *answered,
        test_the_battery_has_enough_cases,
        test_after_the_battery_nothing_changed,
    )


# ------------------------------------------------------------------------ the app in process


@dataclass
class Reply:
    """An in-process answer read like a requests.Response (status_code, headers, text, json())."""

    status_code: int
    headers: Any
    content: bytes
    method: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def request(self) -> Any:
        return type("SentRequest", (), {"method": self.method})

    def json(self) -> Any:
        return json.loads(self.content)


class InProcess:
    """The Flask app driven through its test client, for everything that needs no real HTTP
    server: routes, validation, the guard and the error handlers run exactly as under CherryPy."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.params = app.extensions["prediction_service"].params

    def request(self, method: str, path: str, *, json: Any = None, data: Any = None, headers=None, **kw) -> Reply:
        if "params" in kw:  # requests' name for the query
            kw["query_string"] = kw.pop("params")
        response = self.client.open(path, method=method, json=json, data=data, headers=headers or {}, **kw)
        return Reply(response.status_code, response.headers, response.get_data(), method)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.get("/health").status_code != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy after {timeout} s: {self.get('/health').text}")
            time.sleep(0.2)

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Reply:
        return self.request("POST", path, **kw)


# -------------------------------------------------------------------- data with a known answer

CATEGORIES = ("a", "b", "c")


def known_rows(kind: str, n: int, seed: int = 0, classes: int = 2) -> tuple[list[dict], dict, float]:
    """Rows drawn from a known model, the schema that describes them, and the best any model can
    do on them (the known optimum: the Bayes accuracy, or the noise's standard deviation as RMSE).

    * ``logistic``: classes drawn from a softmax of linear margins in x1, x2 and a categorical c
      (k classes named c0..c{k-1}; two classes are 'no'/'yes');
    * ``linear``: y = 3 x1 - 2 x2 + effect(c) + N(0, 0.5);
    * ``xor``: the class is (x1 > 0) xor (x2 > 0), 3 % flipped: no linear model does better than
      chance, a forest nearly perfectly;
    * ``wave``: y = 4 sin(3 x1) cos(2 x2) + N(0, 0.1), a numeric target a line cannot follow."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    c = rng.integers(0, len(CATEGORIES), n)
    if kind == "logistic":
        weights = rng.normal(0, 2.5, (classes, 2))
        effects = rng.normal(0, 1.0, (classes, len(CATEGORIES)))
        margins = np.outer(x1, weights[:, 0]) + np.outer(x2, weights[:, 1]) + effects[:, c].T
        p = np.exp(margins - margins.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        drawn = np.array([rng.choice(classes, p=row) for row in p])
        names = ["no", "yes"] if classes == 2 else [f"c{i}" for i in range(classes)]
        label: list = [names[i] for i in drawn]
        optimum = float(p.max(1).mean())  # the Bayes classifier's expected accuracy
    elif kind == "xor":
        names = ["no", "yes"]
        flip = rng.uniform(0, 1, n) < 0.03
        label = [names[int(v)] for v in ((x1 > 0) ^ (x2 > 0)) ^ flip]
        optimum = 0.97
    elif kind == "linear":
        names = []
        label = (3 * x1 - 2 * x2 + np.array([0.0, 1.5, -1.0])[c] + rng.normal(0, 0.5, n)).tolist()
        optimum = 0.5
    elif kind == "wave":
        names = []
        label = (4 * np.sin(3 * x1) * np.cos(2 * x2) + rng.normal(0, 0.1, n)).tolist()
        optimum = 0.1
    else:
        raise ValueError(kind)
    rows = [
        {"x1": float(a), "x2": float(b), "c": CATEGORIES[k], "y": y}
        for a, b, k, y in zip(x1.tolist(), x2.tolist(), c.tolist(), label, strict=True)
    ]
    label_block = {"key": "y", **({"values": {name: i for i, name in enumerate(names)}} if names else {})}
    features = [{"key": "x1"}, {"key": "x2"}, {"key": "c", "values": {k: i for i, k in enumerate(CATEGORIES)}}]
    return rows, {"label": label_block, "features": features}, optimum


class Progress:
    """What a job reports through, for an algorithm run outside a worker: its id and a record
    of every step."""

    def __init__(self, job_id: str = "test-job"):
        self.job_id = job_id
        self.steps: list[tuple[str, float]] = []

    def progress(self, message: str, progress: float) -> None:
        self.steps.append((message, progress))


def three_ways(spark, algorithm, job: dict, collection, params: dict) -> dict[str, dict]:
    """One model scored three ways over a whole collection, by _id: the numpy predictor of its
    stored form, Spark's own fitted model (``transform``) and the batch path (prepare/outputs).
    The model is fitted at the grid's first point on every valid row."""
    from pyspark.sql import functions as F

    from predictionservice.sparkfeatures import feature_columns
    from predictionservice.sparksession import read_collection

    job = algorithm.with_defaults(job)
    parser = algorithm.check(job)
    algorithm = algorithm()
    df = read_collection(spark, ref(collection), partitions=2)
    features, label, error = feature_columns(parser, df.schema)
    encoded = df.select("_id", features.alias("features"), label.alias("label"), error.alias("error"))
    estimator, grid = algorithm.estimator(job, parser)
    fitted = estimator.fit(encoded.filter("error IS NULL"), grid[0])
    stored = {
        "name": algorithm.name,
        "schema": parser.schema(),
        **algorithm.learned(fitted, parser, spark, params["spark_scratch_dir"] or None),
    }
    docs = {str(d["_id"]): d for d in collection.find()}
    keys = sorted(docs)
    online = dict(zip(keys, algorithm.compile(stored).predict([docs[k] for k in keys]), strict=True))
    transformed = fitted.transform(encoded.filter("error IS NULL"))
    spark_cols = ["_id", "prediction"] + (["probability"] if parser.class_names else [])
    own = {r["_id"]: r for r in transformed.select(*spark_cols).collect()}
    batch_rows = algorithm.outputs(algorithm.prepare(df, stored, parser).filter("error IS NULL"), stored, parser)
    batch = {
        r["_id"]: r.asDict(recursive=True) for r in batch_rows.select(F.col("value._id").alias("_id"), "*").collect()
    }
    return {"stored": stored, "online": online, "spark": own, "batch": batch}


def assert_three_ways_agree(ways: dict, classes: list, tolerance: float = 1e-9) -> None:
    import pytest

    online, own, batch = ways["online"], ways["spark"], ways["batch"]
    assert set(online) == set(own) == set(batch) and online
    for key, answer in online.items():
        if classes:
            assert answer["prediction"] == int(own[key]["prediction"]) == batch[key]["score"], key
            assert answer["label"] == classes[answer["prediction"]] == batch[key]["label"]
            spark_p = own[key]["probability"].toArray().tolist()
            ours = [answer["probabilities"][name] for name in classes]
            assert ours == pytest.approx(spark_p, rel=tolerance, abs=tolerance)
            assert [batch[key]["probabilities"][name] for name in classes] == pytest.approx(
                ours, rel=tolerance, abs=tolerance
            )
            assert sum(ours) == pytest.approx(1.0, abs=1e-12)
        else:
            assert answer["prediction"] == pytest.approx(own[key]["prediction"], rel=tolerance, abs=tolerance)
            assert batch[key]["prediction"] == pytest.approx(answer["prediction"], rel=tolerance, abs=tolerance)


def shap_trees(stored: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored forest (predictors.Forest's layout, with covers) as the tree arrays
    shap.TreeExplainer accepts: each tree's leaf values divided by the number of trees, as shap
    sums an ensemble's trees where the forest averages them; shap fills the inner nodes' values
    from the covers itself. Shared by tests/test_treeshap.py and bench/bench_explain.py."""
    import numpy as np

    models = []
    for tree in stored:
        values = np.asarray(tree["value"], dtype=np.float64) / len(stored)
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        models.append({
            "children_left": left, "children_right": right, "children_default": left,
            "features": np.asarray(tree["feature"]), "thresholds": np.asarray(tree["threshold"], dtype=np.float64),
            "values": values.reshape(len(left), -1), "node_sample_weight": np.asarray(tree["cover"], dtype=np.float64),
        })  # fmt: skip
    return {"trees": models}


def register_name(params: dict, job: dict, prefix: str = "named", copy_of: str | None = None) -> str:
    """A name of a test's own in the registry of the service of params: version 1 stored as
    training stores it (a one-feature model, or a copy of the stored model copy_of; no Spark),
    with job (its "model" set) as the job document it was trained from, what a retrain queues."""
    from predictionservice.modelstore import ModelStore
    from predictionservice.redisclient import connect
    from predictionservice.registry import Registry

    registry = Registry(ModelStore(connect(params["redis_url"], params["models_db"]), params["redis_key_prefix"]))
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    model = {**ONE_FEATURE_MODEL, "task": "binary", "metrics": {"auc": 0.7}}
    if copy_of is not None:
        model = registry.store.load(copy_of)[0]
    registry.add_version(name, uuid.uuid4().hex, model, {**job, "model": name})
    registry.client.close()
    return name


# ------------------------------------------------------------------- a monitored named model


def monitored_name(params: dict, mongo_client, n: int = 40) -> tuple[str, str, Any]:
    """A named model (version 1, with a tiny training profile) registered in the service's model
    store, and n logged predictions of it from the last minutes (half with feedback), in the
    prediction log's format: (name, model key, cleanup)."""
    from datetime import UTC, datetime, timedelta

    from predictionservice.modelstore import ModelStore
    from predictionservice.redisclient import connect
    from predictionservice.registry import Registry

    registry = Registry(ModelStore(connect(params["redis_url"], params["models_db"]), params["redis_key_prefix"]))
    name, key = f"monitored-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    profile = {
        "version": 1, "rows": 100,
        "features": {"x": {"kind": "numeric", "edges": [0.0], "counts": [50, 50]}},
        "score": {"kind": "numeric", "of": "probability", "edges": [0.5], "counts": [50, 50]},
    }  # fmt: skip
    schema = {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "x"}]}
    registry.add_version(name, key, {**TINY_MODEL, "task": "binary", "schema": schema, "profile": profile})
    db, collection = params["prediction_log_collection"].split(".", 1)
    log = mongo_client[db][collection]
    now = datetime.now(UTC)
    log.insert_many([
        {"request_id": uuid.uuid4().hex, "time": now - timedelta(minutes=1), "variant": "answer",
         "model": {"name": name, "version": 1, "model_key": key}, "record": {"x": 1.0 + i},
         "answer": {"prediction": 1, "label": "yes", "probability": 0.9}, "latency_ms": 1.0,
         **({"feedback": {"label": ["no", "yes"][i % 8 != 0]}} if i % 2 == 0 else {})}
        for i in range(n)
    ])  # fmt: skip

    def cleanup() -> None:
        log.delete_many({"model.model_key": key})
        registry.delete_name(name)
        registry.store.delete(key)

    return name, key, cleanup


# ------------------------------------------------------------------- a synthetic monitored model
# A training population, its profile made in numpy as sparkprofile makes one, a binary model with
# it, and prediction log documents: tests of the monitor and of retraining on drift.


DRIFT_CATEGORIES = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.04, "e": 0.01}  # d and e are rare: pooled
PROBABILITY_EDGES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def population(n: int, seed: int) -> list[dict]:
    """Training rows: x1 normal, x2 exponential (skewed), c categorical with rare values."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, n), rng.exponential(2.0, n)
    c = rng.choice(list(DRIFT_CATEGORIES), n, p=list(DRIFT_CATEGORIES.values()))
    return [{"x1": float(a), "x2": float(b), "c": str(k)} for a, b, k in zip(x1, x2, c, strict=True)]


def probability(record: dict) -> float:
    """The model's score depends on x2 only: a shift of x1 or c leaves it alone."""
    return 1 / (1 + math.exp(-(record["x2"] - 1.4)))


def answer(record: dict) -> dict:
    p = probability(record)
    return {"prediction": int(p > 0.5), "label": ["no", "yes"][int(p > 0.5)], "probability": p,
            "probabilities": {"no": 1 - p, "yes": p}}  # fmt: skip


def numeric_profile(values) -> dict:
    edges = sorted(set(np.quantile(values, np.arange(1, 10) / 10).tolist()))
    profile = {"kind": "numeric", "edges": edges, "counts": [0] * (len(edges) + 1)}
    profile["counts"] = binned(profile, list(values))[0].tolist()
    return profile


def profile_of(rows: list[dict]) -> dict:
    names = sorted(DRIFT_CATEGORIES, key=lambda k: -DRIFT_CATEGORIES[k])
    category = {"kind": "categorical", "bins": [*names, "(other)"], "values": {k: i for i, k in enumerate(names)},
                "counts": [sum(r["c"] == k for r in rows) for k in names] + [0]}  # fmt: skip
    score = {"kind": "numeric", "of": "probability", "edges": PROBABILITY_EDGES, "counts": [0] * 10}
    score["counts"] = binned(score, [probability(r) for r in rows])[0].tolist()
    return {
        "version": 1,
        "rows": len(rows),
        "features": {"x1": numeric_profile([r["x1"] for r in rows]), "x2": numeric_profile([r["x2"] for r in rows]),
                     "c": category},
        "score": score,
    }  # fmt: skip


DRIFT_TRAINING = population(5000, seed=1)
DRIFT_PROFILE = profile_of(DRIFT_TRAINING)
DRIFT_SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x1"}, {"key": "x2"}, {"key": "c", "values": {k: i for i, k in enumerate(DRIFT_CATEGORIES)}}],
}
DRIFT_MODEL = {"name": "LogisticRegressionWrapper", "task": "binary", "schema": DRIFT_SCHEMA, "profile": DRIFT_PROFILE,
         "metrics": {"auc": 0.8}, "created_at": "2026-12-05T00:00:00Z"}  # fmt: skip


def docs_of(records: list[dict], labels: list | None = None) -> list[dict]:
    labels = labels if labels is not None else [None] * len(records)
    return [
        {"record": r, "answer": answer(r), **({"feedback": {"label": y}} if y is not None else {})}
        for r, y in zip(records, labels, strict=True)
    ]


def logged(name: str, key: str, version: int, records: list[dict], labels: list, when: datetime) -> list[dict]:
    return [
        {"request_id": uuid.uuid4().hex, "time": when, "model": {"name": name, "version": version, "model_key": key},
         "variant": "answer", "latency_ms": 1.0, **doc}
        for doc in docs_of(records, labels)
    ]  # fmt: skip


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, code) of every ```sh and ```python block of a Markdown text, in order."""
    return re.findall(r"```(sh|python)\n(.*?)```", markdown, re.DOTALL)


def run_shell_examples(blocks: list[tuple[str, str]], url: str) -> str:
    """The shell blocks run as one script, as a reader pastes them, against the service at url
    (in place of localhost:5000); their output, after asserting the script succeeded."""
    host = url.split("//", 1)[1]
    # -e stops at the first failing command; no pipefail: `curl ... | head` ends curl early, as in a terminal
    shell = "\n".join(code for language, code in blocks if language == "sh").replace("localhost:5000", host)
    run = subprocess.run(["bash", "-eu", "-c", shell], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


def docs_hooks() -> Any:
    """docs/hooks.py, the manual's generators, imported from its path as MkDocs does."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manual_pages() -> list[str]:
    """The pages mkdocs.yml's nav lists, in order ('  - Title: page.md' lines)."""
    return re.findall(r"^\s*- [^:\n]+: ([\w-]+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)


# ------------------------------------------------------------------ the order test files run in

# The seconds each test file took in a recorded run (`make test-times` writes it). `make test`
# hands files to its two streams in the order of their weight, heaviest first, so the light ones
# fill the end; in the order of their test counts (xdist's own), the few-test system files came
# last (replaying one run: streams ending 43 s apart, against together by weight).
FILE_TIMES = ROOT / "tests" / "filetimes.json"
# A file the recording does not know weighs its heaviest tier's typical seconds.
TIER_SECONDS = {"unit": 1.0, "app": 5.0, "system": 60.0}


def recorded_file_times(path: Path = FILE_TIMES) -> dict[str, float]:
    """The recorded seconds by file name ({} when nothing is recorded)."""
    try:
        return {str(name): float(seconds) for name, seconds in json.loads(path.read_text()).items()}
    except FileNotFoundError:
        return {}


def heaviest_first(items: list[Any], times: dict[str, float], tier: Any) -> list[Any]:
    """The items, their files ordered by weight, heaviest first (equal weights by name); each
    file's items together and in their own order. tier(item) names an item's tier, which weighs
    a file that has no recorded time."""
    by_file: dict[str, list[Any]] = {}
    for item in items:
        by_file.setdefault(Path(str(item.fspath)).name, []).append(item)

    def weight(name: str) -> float:
        if name in times:
            return times[name]
        return max(TIER_SECONDS.get(tier(item), TIER_SECONDS["unit"]) for item in by_file[name])

    order = sorted(by_file, key=lambda name: (-weight(name), name))
    return [item for name in order for item in by_file[name]]


def write_file_times(seconds: dict[str, float], path: Path = FILE_TIMES) -> None:
    """Record each file's seconds (rounded to a tenth), by name, for heaviest_first."""
    path.write_text(json.dumps({name: round(s, 1) for name, s in sorted(seconds.items())}, indent=0) + "\n")
