"""Online prediction against the real web server (CherryPy + TransLogger + Flask, modelserver.py).

(a) POST /predict/ with one bank record over 16 concurrent keep-alive connections for a fixed
    time: requests/s, p50 and p99 latency, errors. Baseline, with the same load generator and
    body: bench/bare_server.py, a bare endpoint served the same way, on the same thread pool.
(b) micro-batches of 1,000 records per request over a few connections: rows/s, against the same
    body posted to the bare endpoint.
(c) the web server's RSS (VmRSS) before and after 10,000 single-record predictions.
(d) with --mlflow: `mlflow models serve` of a scikit-learn pipeline fitted on the same data, loaded
    the same way (installed into bench/.venv-mlflow on first use).
(e) with --mlserver: MLServer 1.7.1's scikit-learn runtime serving the same pipeline over its V2
    JSON endpoint, probabilities asked for (installed into bench/.venv-mlserver on first use).
The (a) run also loads a second web server of the service with model_watch off (the per-request
version check): single / polling is what the change channel gained, in the same run. With
--before REV, (a) and (b) also load the web server as the code was at git revision REV (a
temporary `git worktree` of it, same venv, Redis and model): single / before is what a change cost
/predict/ in the same run (issue 24: explanations must leave /predict/ without explain >= 0.97x;
its before is 2ace8a2).

The model is a real LogisticRegressionWrapper model with job.json's schema, fitted with
scikit-learn on the bank data and stored through ModelStore (no worker or Spark needed).

    .venv/bin/python bench/bench_predict.py [--quick] [--duration S] [--mlflow] [--mlserver] [--profile]
                                            [--before REV]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import harness
import loadgen
import requests
from harness import BENCH_DIR, JOB, Bench, arg_parser, bank_documents, encode_valid, fit_and_store, parse_args, rss_mb
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


def check(url: str, body: bytes, expect: str) -> None:
    """One request by hand before the load: the endpoint must answer 200 with `expect` in it."""
    response = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    if response.status_code != 200 or expect not in response.text:
        raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:300]}")


def load(bench: Bench, key: str, url: str, body: bytes, args: Any, **bounds: Any) -> loadgen.LoadResult:
    """Run the load generator; record its summary under runs[key] and its main figures."""
    rows = bounds.pop("rows_per_request", 1)
    bounds = {"connections": args.connections, "duration": args.duration, **bounds}
    result = loadgen.run(url, body, processes=args.processes, **bounds)
    summary = result.summary()
    bench.result.setdefault("runs", {})[key] = {**summary, **bounds, "rows_per_request": rows}
    bench.figure(f"{key}_requests_per_s", result.per_second, "req/s", f"{bounds['connections']} connections")
    if rows > 1:
        bench.figure(f"{key}_rows_per_s", result.per_second * rows, "rows/s", f"{rows} records per request")
    bench.figure(f"{key}_p50_ms", summary["p50_ms"], "ms")
    bench.figure(f"{key}_p99_ms", summary["p99_ms"], "ms")
    bench.figure(f"{key}_errors", result.errors, "", f"statuses {summary['statuses']}")
    return result


def start_bare(bench: Bench, params: dict[str, Any]) -> str:
    bare_params = {**params, "port": embedded.free_port()}
    path = bench.write_params(bare_params, "bare-parameters")
    url = f"http://127.0.0.1:{bare_params['port']}"
    argv = [sys.executable, str(BENCH_DIR / "bare_server.py"), str(path)]
    bench.start_server("bare_server", argv, url, lambda: answers(url + "/health"))
    bench.say(f"bare endpoint at {url} ({params['threads']} threads, like the service)")
    return url


def start_polling(bench: Bench, params: dict[str, Any]) -> tuple[str, int]:
    """A second web server of the service with model_watch off: each prediction reads the model's
    version token (the per-request HGET), as before the change channel; the same run's before."""
    polling = {**params, "port": embedded.free_port(), "model_watch": False}
    path = bench.write_params(polling, "polling-parameters")
    url = f"http://127.0.0.1:{polling['port']}"
    argv = [sys.executable, str(harness.ROOT / "modelserver.py"), str(path)]
    server = bench.start_server("web_polling", argv, url, lambda: answers(url + "/health"))
    bench.say(f"the service with model_watch off at {url}")
    return url, server.process.pid


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


def v2_body(records: list[dict[str, Any]]) -> bytes:
    """An Open Inference Protocol request for MLServer: one input per column, decoded into a
    DataFrame (the pandas codec), asking for the probabilities."""
    inputs = []
    for name in records[0]:
        column = [r[name] for r in records]
        numeric = all(isinstance(v, int | float) for v in column)
        inputs.append({"name": name, "shape": [len(column)], "datatype": "FP64" if numeric else "BYTES",
                       "data": column})  # fmt: skip
    outputs = [{"name": "predict_proba"}]
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


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of each timed load (default 20; --quick: 5)")
    parser.add_argument("--connections", type=int, help="concurrent connections for single records (default 16)")
    parser.add_argument("--processes", type=int, help="load generator processes (default 2)")
    parser.add_argument("--batch", type=int, help="records per request in (b) (default 1000)")
    parser.add_argument("--batch-connections", type=int, help="connections in (b) (default 2)")
    parser.add_argument("--rss-predictions", type=int, help="predictions before the RSS reading (default 10000)")
    parser.add_argument("--mlflow", action="store_true", help="also compare with `mlflow models serve`")
    parser.add_argument("--mlserver", action="store_true", help="also compare with MLServer's scikit-learn runtime")
    parser.add_argument("--profile", action="store_true", help="py-spy the web servers during the single-record loads")
    parser.add_argument("--before", metavar="REV", help="also load the web server as of this git revision")
    normal = {
        "duration": 20.0,
        "connections": 16,
        "processes": 2,
        "batch": 1000,
        "batch_connections": 2,
        "rss_predictions": 10_000,
    }
    args = parse_args(parser, normal, {"duration": 5.0, "rss_predictions": 3000}, argv)
    with Bench("predict", args) as bench:
        bench.start_stores()
        docs = bank_documents(bench)
        params = bench.params()
        key = fit_and_store(bench, params, JOB, docs)["model_key"]
        service = bench.start_service(params, worker=False)
        bare = start_bare(bench, params)
        polling, polling_pid = start_polling(bench, params)
        polling += "/predict/"

        _, _, kept = encode_valid(DataParser(JOB["schema"]), docs, labels=False)
        records = [{k: v for k, v in docs[i].items() if k != JOB["schema"]["label"]["key"]} for i in kept]
        single = json.dumps({"modelkey": key, "record": records[0]}).encode()
        batch = json.dumps({"modelkey": key, "records": records[: args.batch]}).encode()
        rows = min(args.batch, len(records))
        predict, bare_predict = service.url + "/predict/", bare + "/predict/"
        for url, body, expect in ((predict, single, '"probability"'), (predict, batch, '"predictions"')):
            check(url, body, expect)
        check(bare_predict, single, '"records"')
        check(polling, single, '"probability"')
        before = start_before(bench, params, args.before) if args.before else None
        if before is not None:
            check(before, single, '"probability"')
        web = service.children["web"].pid

        bench.section(f"(c) RSS of the web server (pid {web}) and {args.rss_predictions} predictions")
        bench.figure("rss_mb_before", round(rss_mb(web), 1), "MB")
        load(bench, "rss_phase", predict, single, args, duration=600.0, max_requests=args.rss_predictions)
        bench.figure("rss_mb_after", round(rss_mb(web), 1), "MB", f"after {args.rss_predictions} more predictions")
        bench.goal("rss_after_predictions", "rss_mb_after", "<= 150")

        bench.section(f"(a) single records, {args.connections} keep-alive connections, {args.duration:g}s each")
        load(bench, "bare", bare_predict, single, args)
        with profiled(bench, "single", web):
            load(bench, "single", predict, single, args)
        with profiled(bench, "polling", polling_pid):
            load(bench, "polling", polling, single, args)
        bench.ratio("single / bare requests per s", "single_requests_per_s", "bare_requests_per_s", ">= 0.8")
        bench.ratio("single / polling requests per s", "single_requests_per_s", "polling_requests_per_s")
        if before is not None:
            load(bench, "before", before, single, args)
            bench.ratio(
                f"single / {args.before} requests per s", "single_requests_per_s", "before_requests_per_s", ">= 0.97"
            )
        bench.goal("single_p99", "single_p99_ms", "<= 20")

        bench.section(f"(b) {rows} records per request, {args.batch_connections} connections, {args.duration:g}s each")
        more = {"connections": args.batch_connections, "rows_per_request": rows}
        load(bench, "bare_batch", bare_predict, batch, args, **more)
        load(bench, "batch", predict, batch, args, **more)
        bench.ratio("batch / bare_batch rows per s", "batch_rows_per_s", "bare_batch_rows_per_s")
        if before is not None:
            load(bench, "before_batch", before, batch, args, **more)
            bench.ratio(f"batch / {args.before} rows per s", "batch_rows_per_s", "before_batch_rows_per_s", ">= 0.97")
        bench.figure("rss_mb_end", round(rss_mb(web), 1), "MB", "after all the loads")

        if args.mlflow:
            bench.section("(d) mlflow models serve of a scikit-learn pipeline")
            mlflow = mlflow_server(bench)
            if mlflow is not None:
                invocations = mlflow + "/invocations"
                one = json.dumps({"dataframe_records": records[:1]}).encode()
                many = json.dumps({"dataframe_records": records[: args.batch]}).encode()
                check(invocations, one, "predictions")
                load(bench, "mlflow_single", invocations, one, args)
                load(bench, "mlflow_batch", invocations, many, args, **more)
                single_ratio = ("single_requests_per_s", "mlflow_single_requests_per_s", ">= 10")
                bench.ratio("single / mlflow requests per s", *single_ratio)
                bench.ratio("batch / mlflow rows per s", "batch_rows_per_s", "mlflow_batch_rows_per_s", ">= 1.5")
        if args.mlserver:
            compare_mlserver(bench, args, records, single_rate="single_requests_per_s", more=more)
        bench.save()
    return 0


@contextlib.contextmanager
def profiled(bench: Bench, key: str, pid: int) -> Iterator[None]:
    """With --profile: py-spy samples the web server while the block's load runs; the summary
    goes into the results as profile_<key> and the top of it is printed."""
    if not bench.args.profile:
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


def compare_mlserver(bench: Bench, args: Any, records: list[dict[str, Any]], single_rate: str, more: dict) -> None:
    bench.section("(e) MLServer 1.7.1, scikit-learn runtime, V2 JSON")
    mlserver = mlserver_server(bench)
    if mlserver is None:
        return
    infer = mlserver + "/v2/models/bank/infer"
    check(infer, v2_body(records[:1]), "predict_proba")
    load(bench, "mlserver_single", infer, v2_body(records[:1]), args)
    load(bench, "mlserver_batch", infer, v2_body(records[: args.batch]), args, **more)
    bench.ratio("single / mlserver requests per s", single_rate, "mlserver_single_requests_per_s", ">= 10")
    bench.ratio("batch / mlserver rows per s", "batch_rows_per_s", "mlserver_batch_rows_per_s", ">= 1.5")


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
