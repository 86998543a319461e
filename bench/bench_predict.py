"""Online prediction against the real web server (CherryPy + TransLogger + Flask, modelserver.py),
every compared server loaded in interleaved rounds (A B C, B C A, C A B ...: a shared machine's
noise falls on each alike); each figure is the median of the rounds, each ratio the median of the
rounds' ratios, with their spread.

(a) POST /predict/ with one bank record over 16 concurrent keep-alive connections: requests/s and
    p99 latency of the service by the model's name with the prediction log on (and, as the arm
    "unlogged", of a second web server with it off: what the log costs), against
    bench/bare_server.py, a bare endpoint served the same way (CherryPy, TransLogger, the same
    thread pool) that parses the body and answers a small object with the same JSON codec (orjson).
(b) 1,000 records per request over 2 connections: rows/s of the service (by name, log off) against
    a fair batch ceiling: the bare endpoint parsing the records and writing one answer per record,
    shaped like the service's, with the same codec: what any server must do with that body.
(c) the web server's RSS (VmRSS) after N single-record predictions and after 10 N: flat, or a leak.
(d) with --mlflow: `mlflow models serve` of a scikit-learn pipeline fitted on the same data
    (installed into bench/.venv-mlflow on first use), an arm of (a) and (b).
(e) with --mlserver: MLServer 1.7.1's scikit-learn runtime serving the same pipeline over its V2
    JSON endpoint, probabilities asked for (bench/.venv-mlserver), an arm of (a) and (b); and
    "v2_batch", the service's own V2 infer route (log off) sent the same columns, an arm of (b).
(f) what bounds (b): a batch's steps timed one by one in this process (the service's parse with
    its checks, encode, score and answers, write; the ceiling's parse, build, write), and the
    service's with parse and encode done by a typed compiled decoder (bench/typeddecode.py,
    msgspec, when installed): what a change of JSON codec would leave of the bound.
(g) one record's request as a WSGI call in this process (TransLogger and the app, no server or
    socket), the service's (log off) against the bare endpoint's: the service's own work a request.
With --polling, (a) also loads a server with model_watch off (a version check per request: what
the change channel gains). With --before REV, (a) and (b) also load the web server as the code was
at git revision REV (a temporary `git worktree` of it, same venv, Redis and model): what a change
cost, in the same run. With --profile, py-spy samples the service's web server during its first
round of each load.

The model is a real LogisticRegressionWrapper model with job.json's schema, fitted with
scikit-learn on the bank data and stored through ModelStore as version 1 of a name (no worker or
Spark needed).

    .venv/bin/python bench/bench_predict.py [--quick] [--duration S] [--rounds N] [--mlflow] [--mlserver]
                                            [--polling] [--profile] [--before REV]
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import timeit
from collections.abc import Iterator
from typing import Any

import harness
import loadgen
import requests
from bench_predictlog import cpu_seconds, mongodb_pid
from harness import (
    BENCH_DIR,
    JOB,
    Bench,
    arg_parser,
    bank_documents,
    connect,
    encode_valid,
    fit_and_store,
    interleaved,
    parse_args,
    rss_mb,
)
from profiling import Profile

from dataparser import DataParser
from localservers import embedded

MLFLOW_REQUIREMENTS = ["mlflow==3.17.2", "scikit-learn==1.9.1", "pandas==2.3.3"]
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLSERVER_REQUIREMENTS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "scikit-learn==1.9.1", "pandas==2.3.3"]
MLSERVER_VENV = BENCH_DIR / ".venv-mlserver"


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def check(url: str, body: bytes, expect: str) -> Any:
    """One request by hand before the load: the endpoint must answer 200 with `expect` in it;
    its answer."""
    response = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    if response.status_code != 200 or expect not in response.text:
        raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:300]}")
    return response.json()


def start_bare(bench: Bench, params: dict[str, Any], answer: dict[str, Any]) -> str:
    """The bare endpoint, answering each record of a batch with a copy of ``answer`` (one of the
    service's own answers to a record)."""
    bare_params = {**params, "port": embedded.free_port()}
    path = bench.write_params(bare_params, "bare-parameters")
    shape = bench.dir / "bare-answer.json"
    shape.write_text(json.dumps(answer))
    url = f"http://127.0.0.1:{bare_params['port']}"
    argv = [sys.executable, str(BENCH_DIR / "bare_server.py"), str(path), str(shape)]
    bench.start_server("bare_server", argv, url, lambda: answers(url + "/health"))
    bench.say(f"bare endpoint at {url} ({params['threads']} threads, like the service)")
    return url


def start_polling(bench: Bench, params: dict[str, Any]) -> str:
    """A second web server of the service with model_watch off: each prediction reads the model's
    version token (the per-request HGET), as before the change channel; the same run's before."""
    polling = {**params, "port": embedded.free_port(), "model_watch": False}
    path = bench.write_params(polling, "polling-parameters")
    url = f"http://127.0.0.1:{polling['port']}"
    argv = [sys.executable, str(harness.ROOT / "modelserver.py"), str(path)]
    bench.start_server("web_polling", argv, url, lambda: answers(url + "/health"))
    bench.say(f"the service with model_watch off at {url}")
    return url


def start_before(bench: Bench, params: dict[str, Any], revision: str) -> str:
    """The service's web server as its code was at ``revision``: a detached git worktree of it
    (removed at the end), run by the same Python on the same Redis and stored model."""
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="bench-before-")) / "tree"
    git = ["git", "-C", str(harness.ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(folder), revision], check=True, capture_output=True)
    bench.on_stop(
        "worktree of the before", lambda: subprocess.run([*git, "remove", "--force", str(folder)], check=False)
    )
    # Only the settings that revision knows (it refuses the others): a newer setting keeps its default there.
    listing = "import json; from predictionservice.defaults import SETTINGS; print(json.dumps(list(SETTINGS)))"
    known = subprocess.run([sys.executable, "-c", listing], cwd=folder, check=True, capture_output=True, text=True)
    before = {k: v for k, v in params.items() if k in json.loads(known.stdout)} | {"port": embedded.free_port()}
    path = bench.write_params(before, "before-parameters")
    url = f"http://127.0.0.1:{before['port']}"
    argv = [sys.executable, str(folder / "modelserver.py"), str(path)]
    server = embedded.ServerProcess("web_before", argv, url, bench.dir / "logs" / "web_before.log", cwd=folder)
    bench.on_stop("web_before", server.stop)
    server.wait_until(lambda: answers(url + "/health"), 60)
    bench.say(f"the service as of {revision} at {url}")
    return url + "/predict/"


def skipped(bench: Bench, key: str, label: str, exc: Exception) -> None:
    """A comparison that could not be installed or started: said, recorded, and left out."""
    bench.say(f"{label} comparison skipped: {type(exc).__name__}: {exc}")
    bench.result[f"{key}_skipped"] = f"{type(exc).__name__}: {exc}"


def own_venv(bench: Bench, venv: Any, requirements: list[str], program: str) -> Any:
    """The Python of a venv of the comparison's own (installed on first use, pinned)."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / program).exists():
        bench.say(f"installing {' '.join(requirements)} into {venv} (first use only)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *requirements], check=True, timeout=1800)
    return python


def mlserver_server(bench: Bench) -> str | None:
    """MLServer's scikit-learn runtime serving the pipeline over its V2 endpoint, or None (said
    why) when it cannot run."""
    try:
        python = own_venv(bench, MLSERVER_VENV, MLSERVER_REQUIREMENTS, "mlserver")
        repo = bench.dir / "mlserver-model"
        port, grpc, metrics = embedded.free_port(), embedded.free_port(), embedded.free_port()
        script = [str(python), str(BENCH_DIR / "mlserver_model.py"), str(bench.args.csv), str(bench.args.rows or 0)]
        subprocess.run([*script, str(repo), str(port), str(grpc), str(metrics)], check=True, timeout=600)
        url = f"http://127.0.0.1:{port}"
        path = f"PATH={MLSERVER_VENV / 'bin'}:{os.environ.get('PATH', '')}"
        serve = ["env", path, str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(repo)]
        bench.start_server("mlserver", serve, url, lambda: answers(url + "/v2/models/bank/ready"), timeout=180)
        bench.say(f"MLServer at {url}")
        return url
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return skipped(bench, "mlserver", "MLServer", exc)


def v2_body(records: list[dict[str, Any]], output: str = "predict_proba") -> bytes:
    """An Open Inference Protocol request for MLServer: one input per column, decoded into a
    DataFrame (the pandas codec), asking for the probabilities (named output: MLServer's
    predict_proba, the service's probabilities)."""
    inputs = []
    for name in records[0]:
        column = [r[name] for r in records]
        numeric = all(isinstance(v, int | float) for v in column)
        inputs.append({"name": name, "shape": [len(column)], "datatype": "FP64" if numeric else "BYTES",
                       "data": column})  # fmt: skip
    outputs = [{"name": output}]
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": outputs}).encode()


def mlflow_server(bench: Bench) -> str | None:
    """`mlflow models serve` of the scikit-learn pipeline, or None (said why) when it cannot run."""
    try:
        python = own_venv(bench, MLFLOW_VENV, MLFLOW_REQUIREMENTS, "mlflow")
        model_dir = bench.dir / "mlflow-model"
        rows = str(bench.args.rows or 0)
        script = [str(python), str(BENCH_DIR / "mlflow_model.py"), str(bench.args.csv), rows, str(model_dir)]
        subprocess.run(script, check=True, timeout=600)
        port = embedded.free_port()
        url = f"http://127.0.0.1:{port}"
        # mlflow runs `uvicorn` from PATH: the venv's bin directory must be on it.
        path = f"PATH={MLFLOW_VENV / 'bin'}:{os.environ.get('PATH', '')}"
        serve = ["env", path, str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir)]
        serve += ["-h", "127.0.0.1", "-p", str(port), "--env-manager", "local"]
        bench.start_server("mlflow", serve, url, lambda: answers(url + "/ping"), timeout=180)
        bench.say(f"mlflow models serve at {url}")
        return url
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return skipped(bench, "mlflow", "mlflow", exc)


NAME = "bank"
LOG_COLLECTION = "bench.predictions"


def named(bench: Bench, model: dict[str, Any]) -> str:
    """The fitted model as version 1 of NAME, production: the name a consumer's URL keeps."""
    from predictionservice.modelstore import ModelStore
    from predictionservice.registry import Registry

    params = bench.params()
    registry = Registry(ModelStore(connect(params["redis_url"], params["models_db"])))
    registry.add_version(NAME, model["model_key"], model)
    registry.move(NAME, "production", 1)
    return NAME


def measure(bench: Bench, args: Any, urls: dict[str, tuple[str, bytes]], rows: int, pids: dict[str, int]):
    """A measure for interleaved: one load of an arm (rows records per request), its figures; the
    first load of a profiled arm under py-spy."""
    connections = args.connections if rows == 1 else args.batch_connections
    profiled_once: set[str] = set()
    mongo = mongodb_pid()

    def one(arm: str) -> dict[str, float]:
        url, body = urls[arm]
        pid = pids.get(arm) if arm not in profiled_once else None
        profiled_once.add(arm)
        cpu, started = cpu_seconds(mongo), time.monotonic()
        with profiled(bench, arm, pid):
            result = loadgen.run(url, body, connections=connections, processes=args.processes, duration=args.duration)
        if result.errors or set(result.statuses) != {200}:
            raise RuntimeError(f"{arm} ({url}): {result.errors} errors, statuses {dict(result.statuses)}")
        summary = result.summary()
        mongodb_cores = (cpu_seconds(mongo) - cpu) / (time.monotonic() - started)
        return {"per_s": result.per_second * rows, "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
                "mongodb_cores": mongodb_cores}  # fmt: skip

    return one


def report(bench: Bench, runs: dict[str, dict[str, list[float]]], unit: str) -> None:
    """Each arm's medians; the cores MongoDB used meanwhile (the prediction log's inserts: on this
    machine a MongoDB server shares the web server's cores)."""
    for arm, figures in runs.items():
        bench.median(f"{arm}_{unit.replace('/', '_per_')}", figures["per_s"], unit)
        bench.median(f"{arm}_p99_ms", figures["p99_ms"], "ms")
        bench.median(f"{arm}_mongodb_cores", figures["mongodb_cores"], "cores", f"of {os.cpu_count()}")


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of each load of a round (default 10; --quick: 3)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, at least 3 (default 5; --quick: 3)")
    parser.add_argument("--connections", type=int, help="concurrent connections for single records (default 16)")
    parser.add_argument("--processes", type=int, help="load generator processes (default 2)")
    parser.add_argument("--batch", type=int, help="records per request in (b) (default 1000)")
    parser.add_argument("--batch-connections", type=int, help="connections in (b) (default 2)")
    parser.add_argument("--rss-requests", type=int, help="N of (c): RSS after N and after 10 N (default 3000)")
    parser.add_argument("--mlflow", action="store_true", help="also load `mlflow models serve`")
    parser.add_argument("--mlserver", action="store_true", help="also load MLServer's scikit-learn runtime")
    parser.add_argument("--polling", action="store_true", help="also load a web server with model_watch off")
    parser.add_argument("--profile", action="store_true", help="py-spy the service's web server in round 1")
    parser.add_argument("--before", metavar="REV", help="also load the web server as of this git revision")
    normal = {"duration": 10.0, "rounds": 5, "connections": 16, "processes": 2, "batch": 1000,
              "batch_connections": 2, "rss_requests": 3000}  # fmt: skip
    args = parse_args(parser, normal, {"duration": 3.0, "rounds": 3, "rss_requests": 1000}, argv)
    if args.rounds < 3:
        parser.error("--rounds: at least 3 (a median of fewer is one of them)")
    with Bench("predict", args) as bench:
        run_rounds(bench, args)
        bench.save()
    return 0


def run_rounds(bench: Bench, args: Any) -> None:
    bench.start_stores()
    docs = bank_documents(bench)
    model = fit_and_store(bench, bench.params(), JOB, docs)
    name = named(bench, model)
    logged = bench.start_service(
        bench.params(prediction_log=True, prediction_log_collection=LOG_COLLECTION), worker=False
    )
    plain = bench.start_service(bench.params(prediction_log=False), worker=False, name="plain")
    _, _, kept = encode_valid(DataParser(JOB["schema"]), docs, labels=False)
    records = [{k: v for k, v in docs[i].items() if k != JOB["schema"]["label"]["key"]} for i in kept]
    rows = min(args.batch, len(records))
    single = json.dumps({"modelkey": name, "record": records[0]}).encode()
    batch = json.dumps({"modelkey": name, "records": records[:rows]}).encode()
    answer = check(plain.url + "/predict/", batch, '"predictions"')["predictions"][0]
    bare = start_bare(bench, bench.params(), answer) + "/predict/"
    check(logged.url + "/predict/", single, '"probability"')
    singles = {"bare": (bare, single), "single": (logged.url + "/predict/", single)}
    singles["unlogged"] = (plain.url + "/predict/", single)  # what the log costs, in the same rounds
    batches = {"ceiling": (bare, batch), "batch": (plain.url + "/predict/", batch)}
    pids = {"single": logged.children["web"].pid, "batch": plain.children["web"].pid}
    pids["unlogged"] = pids["batch"]
    add_optional_arms(bench, args, singles, batches, records, rows)

    rss(bench, args, logged.url + "/predict/", single, pids["single"])

    bench.section(f"(a) single records, {args.connections} connections, {args.rounds} rounds of {args.duration:g}s")
    runs = interleaved(bench, list(singles), args.rounds, measure(bench, args, singles, 1, pids))
    report(bench, runs, "req/s")
    per_s, p99 = (lambda arm: runs[arm]["per_s"]), (lambda arm: runs[arm]["p99_ms"])
    bench.paired_ratio("single / bare requests per s", per_s("single"), per_s("bare"), ">= 0.8")
    bench.paired_ratio("single / bare p99", p99("single"), p99("bare"), "<= 1.2")
    bench.paired_ratio("unlogged / bare requests per s", per_s("unlogged"), per_s("bare"))
    bench.paired_ratio("unlogged / bare p99", p99("unlogged"), p99("bare"))
    for arm, goal in (("mlserver_single", ">= 10"), ("mlflow_single", ">= 10"), ("polling", ""), ("before", ">= 0.97")):
        if arm in runs:
            bench.paired_ratio(f"single / {arm} requests per s", per_s("single"), per_s(arm), goal)
    competitors_bound(bench, runs, "bare", ("mlserver_single", "mlflow_single"), "requests")

    bench.section(f"(b) {rows} records per request, {args.batch_connections} connections, {args.rounds} rounds")
    runs = interleaved(bench, list(batches), args.rounds, measure(bench, args, batches, rows, pids))
    report(bench, runs, "rows/s")
    bench.paired_ratio("batch / ceiling rows per s", per_s("batch"), per_s("ceiling"), ">= 0.7")
    for arm, goal in (("mlserver_batch", ">= 2"), ("mlflow_batch", ">= 1.5"), ("before_batch", ">= 0.97")):
        if arm in runs:
            bench.paired_ratio(f"batch / {arm} rows per s", per_s("batch"), per_s(arm), goal)
    if "v2_batch" in runs:
        bench.paired_ratio("v2_batch / mlserver_batch rows per s", per_s("v2_batch"), per_s("mlserver_batch"))
    competitors_bound(bench, runs, "ceiling", ("mlserver_batch", "mlflow_batch"), "rows")
    bench.figure("rss_mb_end", round(rss_mb(pids["single"]), 1), "MB", "the logging server, after all the loads")
    batch_stages(bench, model, batch, answer)
    request_costs(bench, bench.params(prediction_log=False), single, answer)


def competitors_bound(bench: Bench, runs: dict[str, Any], baseline: str, arms: tuple[str, ...], unit: str) -> None:
    """What bounds a goal against another server: the bare endpoint's (or the batch ceiling's)
    own ratio to it, in the same rounds. The service does what the bare endpoint does and more, so
    its ratio to that server is this one times its ratio to the bare endpoint: a goal of 10 x
    with 0.8 x the bare endpoint needs the bare endpoint at 12.5 x."""
    for arm in arms:
        if arm in runs:
            name = f"{baseline} / {arm} {unit} per s"
            bench.paired_ratio(name, runs[baseline]["per_s"], runs[arm]["per_s"])


def best_ms(steps: dict[str, Any], number: int = 10, repeat: int = 15) -> dict[str, float]:
    """Each step's cost: the fastest of repeat timings of number calls (the machine's noise only
    ever adds), the steps timed in turn in each repeat, so a slow spell of the machine falls on
    every step alike instead of on the few timed during it."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeat):
        for name, function in steps.items():
            best[name] = min(best[name], timeit.timeit(function, number=number))
    return {name: seconds / number * 1000 for name, seconds in best.items()}


def batch_stages(bench: Bench, model: dict[str, Any], body: bytes, answer: dict[str, Any]) -> None:
    """(f) What bounds (b): a batch's steps timed in this process, the service's (parse with its
    checks, encode, score, build the answers, write) against the ceiling's (parse, build, write).
    Their ratio is what (b) could reach if HTTP, CherryPy and Flask cost nothing."""
    import orjson

    from modelfactory import ModelFactory
    from predictionservice.defaults import SETTINGS
    from predictionservice.validation import parse_json
    from web.jsonio import check_containers, json_bytes

    bench.section("(f) a batch's steps in process, fastest of 15 interleaved timings of 10 (what bounds (b))")
    predictor = ModelFactory(SETTINGS["algorithms"].default).compile(model)
    records = orjson.loads(body)["records"]
    matrix = predictor.parser.encode(records)
    answers = predictor._answers(matrix)
    limit = SETTINGS["max_json_containers"].default
    steps = {
        # as web.jsonio.json_body reads a body: the containers counted, then parsed and checked
        ("service", "parse_json"): lambda: parse_json(body, brackets=check_containers(body, limit)),
        ("service", "encode"): lambda: predictor.parser.encode(records),
        ("service", "score_and_answers"): lambda: predictor._answers(matrix),
        ("service", "write"): lambda: json_bytes({"modelkey": NAME, "predictions": answers}),
        ("ceiling", "parse"): lambda: orjson.loads(body),
        ("ceiling", "build"): lambda: [dict(answer) for _ in records],
        ("ceiling", "write"): lambda: orjson.dumps({"modelkey": NAME, "predictions": answers}),
    }
    decoder = typed_decoder(predictor.parser, body, matrix)
    if decoder is not None:
        steps["typed", "parse_and_encode"] = lambda: decoder.encode(body)
    timed = best_ms(steps)
    if decoder is not None:  # the service's own steps after the decoder's
        timed |= {("typed", step): timed["service", step] for step in ("score_and_answers", "write")}
    for side in dict.fromkeys(side for side, _ in timed):
        for (of, step), ms in timed.items():
            if of == side:
                bench.figure(f"stage_{side}_{step}_ms", round(ms, 3), "ms", f"{len(records)} records")
        total = sum(ms for (of, _), ms in timed.items() if of == side)
        bench.figure(f"stage_{side}_ms", round(total, 3), "ms", "the steps' sum")
    bench.ratio("batch bound: ceiling / service steps", "stage_ceiling_ms", "stage_service_ms", ">= 0.7")
    if decoder is not None:
        bench.ratio("batch bound with a typed decoder: ceiling / typed steps", "stage_ceiling_ms", "stage_typed_ms")


def request_costs(bench: Bench, params: dict[str, Any], body: bytes, answer: dict[str, Any]) -> None:
    """(g) What one record's request costs each app in this process: a WSGI call through
    TransLogger and the app, as CherryPy makes it, with no socket and no server thread; the
    service's (log off, the model of (a)) against the bare endpoint's. The difference is the
    service's own work a request (hooks, checks, lookup, scoring); served, both also pay the
    server, the sockets and the load generator on the same cores, so (a)'s ratio is higher."""
    from bare_server import bare_app
    from paste.translogger import TransLogger

    from modelserver import access_logger
    from modelservice import modelservice
    from web.services import EXTENSION

    bench.section("(g) one record's request in process, fastest of 15 interleaved timings of 200")
    service = modelservice(params)
    service.extensions[EXTENSION].start()
    try:
        apps = {name: TransLogger(app, logger=access_logger(False)) for name, app in (
            ("service", service), ("bare", bare_app(answer)))}  # fmt: skip
        for name, app in apps.items():
            if not wsgi_call(app, body).startswith(b'{"modelkey"'):
                raise RuntimeError(f"{name}: unexpected answer {wsgi_call(app, body)[:200]!r}")
        timed = best_ms({name: lambda app=app: wsgi_call(app, body) for name, app in apps.items()}, number=200)
    finally:
        service.extensions[EXTENSION].stop()
    for name, ms in timed.items():
        bench.figure(f"request_{name}_us", round(ms * 1000, 1), "us", "one record, in process")
    bench.ratio("in process, one record: bare / service", "request_bare_us", "request_service_us")


def wsgi_call(app: Any, body: bytes) -> bytes:
    """POST /predict/ with body, straight to a WSGI app; the answer's body (200 or it raises)."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/predict/", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }  # fmt: skip
    statuses: list[str] = []
    answer = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    if not statuses[0].startswith("200"):
        raise RuntimeError(f"POST /predict/ in process: {statuses[0]} {answer[:200]!r}")
    return answer


def typed_decoder(parser: Any, body: bytes, matrix: Any) -> Any:
    """The typed compiled decoder (typeddecode.py, msgspec) whose parse and encode (f) times in
    place of the service's: the bound a change of codec would leave. None, said, when msgspec is
    not installed (make bench installs it)."""
    try:
        from typeddecode import TypedDecoder
    except ImportError:
        print("  (the typed decoder's steps need msgspec: make bench installs it)")
        return None
    decoder = TypedDecoder(parser)
    if not (decoder.encode(body) == matrix).all():
        raise SystemExit("the typed decoder's matrix differs from DataParser.encode's: its figure would mean nothing")
    return decoder


def rss(bench: Bench, args: Any, url: str, body: bytes, pid: int) -> None:
    """(c): the logging web server's RSS after N predictions and after 10 N: what a long run does
    to its memory (a leak grows with the requests, a cache or a pool does not)."""
    n = args.rss_requests
    bench.section(f"(c) RSS of the web server (pid {pid}, prediction log on) after {n:,} and {10 * n:,} predictions")
    bench.figure("rss_mb_start", round(rss_mb(pid), 1), "MB", "before any load")
    for count, key in ((n, "rss_mb_after_n"), (9 * n, "rss_mb_after_10n")):
        result = loadgen.run(url, body, connections=args.connections, processes=args.processes, duration=600.0,
                             max_requests=count)  # fmt: skip
        if result.errors or set(result.statuses) != {200}:
            raise RuntimeError(f"{url}: {result.errors} errors, statuses {dict(result.statuses)}")
        bench.figure(key, round(rss_mb(pid), 1), "MB")
    bench.ratio("rss after 10 N / after N", "rss_mb_after_10n", "rss_mb_after_n", "<= 1.05")


def add_optional_arms(
    bench: Bench, args: Any, singles: dict, batches: dict, records: list[dict[str, Any]], rows: int
) -> None:
    """The arms asked for on the command line that could start: each server started now, so the
    rounds interleave them with the rest."""
    single, batch = singles["single"][1], batches["batch"][1]
    if args.polling:
        singles["polling"] = (start_polling(bench, bench.params()) + "/predict/", single)
    if args.before:
        before = start_before(bench, bench.params(), args.before)
        check(before, single, '"probability"')
        singles["before"], batches["before_batch"] = (before, single), (before, batch)
    if args.mlserver and (mlserver := mlserver_server(bench)) is not None:
        infer = mlserver + "/v2/models/bank/infer"
        check(infer, v2_body(records[:1]), "predict_proba")
        singles["mlserver_single"] = (infer, v2_body(records[:1]))
        batches["mlserver_batch"] = (infer, v2_body(records[:rows]))
        # the service's own V2 route (log off, as "batch") on the body MLServer gets, but for the
        # output's name: the two servers compared on the same columns
        ours = batches["batch"][0].removesuffix("/predict/") + f"/v2/models/{NAME}/infer"
        same = v2_body(records[:rows], output="probabilities")
        check(ours, same, '"probabilities"')
        batches["v2_batch"] = (ours, same)
    if args.mlflow and (mlflow := mlflow_server(bench)) is not None:
        invocations = mlflow + "/invocations"
        one = json.dumps({"dataframe_records": records[:1]}).encode()
        check(invocations, one, "predictions")
        singles["mlflow_single"] = (invocations, one)
        batches["mlflow_batch"] = (invocations, json.dumps({"dataframe_records": records[:rows]}).encode())


@contextlib.contextmanager
def profiled(bench: Bench, key: str, pid: int | None) -> Iterator[None]:
    """With --profile and a pid: py-spy samples that web server while the block's load runs; the
    summary goes into the results as profiles[key] and the top of it is printed."""
    if not bench.args.profile or pid is None:
        yield
        return
    profile = Profile(pid, bench.dir / f"profile-{key}.txt")
    with profile:
        yield
    summary = profile.summary(within="app.py:Flask.wsgi_app")  # the app's share of a request
    bench.result.setdefault("profiles", {})[key] = summary
    if "error" in summary:
        bench.say(f"profile of {key}: {summary['error']}")
        return
    bench.say(f"profile of {key} (pid {pid}, {summary['samples']} samples in Flask.wsgi_app), inclusive %:")
    for name, percent in summary["inclusive_percent"]:
        print(f"      {percent:5.1f}  {name}")


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
