"""The command line: ``python -m predictionclient [--url URL] [--token T] COMMAND ...``.

Commands: load, schema, export, train, status, predict, predictall, feedback, models, delete,
registry, promote, retrain, schedule, traffic, monitor (``--help`` on each).
``--wait`` shows a progress bar with the job's message on stderr; ``--json`` prints
machine-readable JSON on stdout, one document a line (``train --wait --json``: the submission,
then the final status last). An error the service answers exits 1 with its message on stderr; a
job that FAILED exits 1 too; a usage error exits 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from predictionclient.client import EXPORT_FORMATS, TOKEN_ENV, URL_ENV, Job, PredictionClient, PredictionServiceError
from predictionservice.version import __version__

Command = Callable[[str, str], argparse.ArgumentParser]


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON on stdout")
    main = argparse.ArgumentParser(prog="python -m predictionclient", description=__doc__.split("\n\n")[1])
    main.add_argument("--url", help=f"the service (default ${URL_ENV}, else http://localhost:5000)")
    main.add_argument("--token", "--key", help=f"the service's token or an API key (default ${TOKEN_ENV})")
    main.add_argument("--json", action="store_true", help="JSON on stdout")
    main.add_argument("--version", action="version", version=f"prediction-client {__version__}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=text, description=text)

    for group in (dataset_commands, job_commands, model_commands, registry_commands, registry_setting_commands):
        group(command)
    return main


def dataset_commands(command: Command) -> None:
    load = command("load", "upload a CSV file into a dataset (db.collection)")
    load.add_argument("file", type=Path)
    load.add_argument("dataset")
    load.add_argument("--append", action="store_true", help="append instead of replacing")
    schema = command("schema", "the schema block the service infers for a dataset and its label")
    schema.add_argument("dataset")
    schema.add_argument("--label", required=True)
    schema.add_argument("--task", choices=["classification", "regression"],
                        help="override the label's kind (default: text is classified, a number regressed)")  # fmt: skip
    export = command("export", "download a dataset (db.collection) as CSV or JSON lines, streamed")
    export.add_argument("dataset")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write it to FILE (default: stdout)")
    export.add_argument("--format", choices=EXPORT_FORMATS,
                        help="csv or jsonl (default: jsonl for a FILE named .jsonl, else csv)")  # fmt: skip


def job_commands(command: Command) -> None:
    train = command("train", "submit a training job document")
    train.add_argument("job", type=Path, metavar="JOB.json")
    train.add_argument("--wait", action="store_true", help="wait for the end, with a progress bar")
    status = command("status", "a job's status")
    status.add_argument("job_id", metavar="ID")
    predictall = command("predictall", "score a whole collection with Spark into another")
    predictall.add_argument("key", metavar="KEY")
    predictall.add_argument("input", metavar="IN")
    predictall.add_argument("output", metavar="OUT")
    predictall.add_argument("--wait", action="store_true", help="wait for the end, with a progress bar")


def model_commands(command: Command) -> None:
    predict = command("predict", "score a record, or a file of records, online")
    predict.add_argument("key", metavar="KEY")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--record", help="one record as a JSON object")
    source.add_argument("--file", type=Path, help="records, one JSON object a line (.jsonl) or a .csv")
    predict.add_argument("--request-id", help="the X-Request-ID to send, what feedback names the request by")
    feedback = command("feedback", "the true outcome of a logged prediction, by its request id")
    feedback.add_argument("request_id", nargs="?", metavar="REQUEST_ID")
    feedback.add_argument("label", nargs="?", metavar="LABEL", help="a class, or a number for a regressor")
    feedback.add_argument("--file", type=Path, help="many: request_id,label lines (.csv) or JSON objects (.jsonl)")
    feedback.add_argument("--text", action="store_true", help="send a LABEL that looks like a number as text")
    command("models", "stored models, newest first")
    delete = command("delete", "delete a model")
    delete.add_argument("key", metavar="KEY")


def registry_commands(command: Command) -> None:
    registry = command("registry", "the named models, or one name's versions, aliases and history")
    registry.add_argument("name", metavar="NAME", nargs="?")
    promote = command("promote", "point a name's alias (default production) at one of its versions")
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="VERSION", type=int)
    promote.add_argument("--alias", default="production", help="the alias to move (default production)")
    retrain = command("retrain", "queue a named model's last job document again")
    retrain.add_argument("name", metavar="NAME")
    retrain.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                         help="override a field of the job document (repeatable), e.g. --set numFolds=2")  # fmt: skip
    retrain.add_argument("--wait", action="store_true", help="wait for the end, with a progress bar")
    monitor = command("monitor", "quality and drift of a named model's logged predictions")
    monitor.add_argument("name", metavar="NAME")
    monitor.add_argument("--since", help="ISO 8601 time the window starts (default: the server's, 24 h)")
    monitor.add_argument("--version", help="a version number or an alias (default: production)")


def registry_setting_commands(command: Command) -> None:
    schedule = command("schedule", "a named model's retraining schedule: show it, set it or stop it")
    schedule.add_argument("name", metavar="NAME")
    when = schedule.add_mutually_exclusive_group()
    when.add_argument("--every", type=int, metavar="SECONDS", help="retrain every so many seconds")
    when.add_argument("--cron", metavar="'M H DOM MON DOW'", help="retrain on a cron schedule (UTC)")
    when.add_argument("--delete", action="store_true", help="stop the schedule")
    schedule.add_argument("--on-drift", action="store_true", help="retrain at a tick only when the log drifted")
    traffic = command("traffic", "a named model's shadow or split traffic: show it, set it or end it")
    traffic.add_argument("name", metavar="NAME")
    mode = traffic.add_mutually_exclusive_group()
    mode.add_argument("--shadow", metavar="ALIAS", help="score every request with ALIAS too (logged, not answered)")
    mode.add_argument("--split", metavar="ALIAS", help="let ALIAS answer --percent %% of the requests")
    mode.add_argument("--end", action="store_true", help="end the shadow or split")
    traffic.add_argument("--percent", type=float, help="a split's share of requests (0 < P < 100)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = PredictionClient(args.url, args.token)
    try:
        return run(client, args)
    except PredictionServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # an unreadable file, a record that is not JSON
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(client: PredictionClient, args: argparse.Namespace) -> int:
    """One command; its exit status."""
    name = args.command
    if name == "load":
        show(args, client.load_csv(args.file, args.dataset, "append" if args.append else "replace"))
    elif name == "schema":
        show(args, client.schema(args.dataset, args.label, args.task))
    elif name == "export":
        run_export(client, args)
    elif name == "train":
        return submitted(args, client.train(args.job))
    elif name == "predictall":
        return submitted(args, client.predict_all(args.key, args.input, args.output))
    elif name == "status":
        show(args, client.status(args.job_id))
    elif name == "predict":
        show_predictions(args, client.predict(args.key, records(args), request_id=args.request_id))
    elif name == "feedback":
        show(args, send_feedback(client, args))
    elif name == "models":
        show_models(args, client.models())
    elif name == "delete":
        client.delete_model(args.key)
        show(args, {"deleted": args.key})
    elif name == "registry":
        show_registry(args, client.registry(args.name))
    elif name == "promote":
        show_entry(args, client.promote(args.name, args.version, args.alias))
    elif name == "retrain":
        return submitted(args, client.retrain(args.name, **overrides(args.set)))
    elif name == "schedule":
        run_schedule(client, args)
    elif name == "traffic":
        run_traffic(client, args)
    elif name == "monitor":
        show_monitor(args, client.monitor(args.name, since=args.since, version=args.version))
    return 0


def overrides(pairs: list[str]) -> dict[str, Any]:
    """--set FIELD=JSON pairs (a value that is not JSON is taken as text: --set description=nightly)."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        field, sep, text = pair.partition("=")
        if not sep or not field:
            raise ValueError(f"--set takes FIELD=VALUE, not {pair!r}")
        try:
            fields[field] = json.loads(text)
        except ValueError:
            fields[field] = text
    return fields


def run_export(client: PredictionClient, args: argparse.Namespace) -> None:
    """The dataset to --output FILE (what was written is said on stdout), else the data itself on
    stdout (--json changes nothing there: CSV and JSON lines are for programs already)."""
    suffix = args.output.suffix.lower() if args.output else ""
    fmt = args.format or ("jsonl" if suffix == ".jsonl" else "csv")
    if args.output is not None:
        written = client.export(args.dataset, args.output, fmt)
        done = {"dataset": args.dataset, "format": fmt, "file": str(args.output), "bytes": written}
        if args.json:
            show(args, done)
        else:
            print(f"{args.dataset}: {written} bytes of {fmt} written to {args.output}")
        return
    sys.stdout.flush()
    try:
        client.export(args.dataset, sys.stdout.buffer, fmt)
    except BrokenPipeError:  # the reader had enough (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run_schedule(client: PredictionClient, args: argparse.Namespace) -> None:
    if args.delete:
        client.delete_schedule(args.name)
        show(args, {"deleted": f"the schedule of {args.name}"})
    elif args.every is not None or args.cron is not None:
        when = "drift" if args.on_drift else None
        show(args, client.schedule(args.name, every_seconds=args.every, cron=args.cron, when=when))
    else:
        show(args, client.get_schedule(args.name))


def run_traffic(client: PredictionClient, args: argparse.Namespace) -> None:
    if (args.percent is None) != (args.split is None):
        raise ValueError("--split ALIAS takes --percent P, and --percent goes only with --split")
    if args.end:
        client.delete_traffic(args.name)
        show(args, {"deleted": f"the traffic setting of {args.name}"})
    elif args.shadow is not None or args.split is not None:
        show(args, client.traffic(args.name, shadow=args.shadow, split=args.split, percent=args.percent))
    else:
        show(args, client.get_traffic(args.name))


def submitted(args: argparse.Namespace, job: Job) -> int:
    show(args, {"job_id": job.id, "kind": job.kind})
    if not args.wait:
        return 0
    final = job.wait(progress=True, raise_on_failure=False)
    show(args, final)
    if final["status"] == "FAILED":
        print(f"error: the job FAILED: {final.get('message', '')}", file=sys.stderr)
        return 1
    return 0


def records(args: argparse.Namespace) -> Any:
    if args.record is not None:
        record = json.loads(args.record)
        if not isinstance(record, dict):
            raise ValueError("--record must be a JSON object")
        return record
    text = args.file.read_text(encoding="utf-8")
    if args.file.suffix.lower() == ".csv":  # values stay text: the service reads numeric strings as numbers
        header = text.partition("\n")[0]
        return list(csv.DictReader(text.splitlines(), delimiter=";" if header.count(";") > header.count(",") else ","))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def send_feedback(client: PredictionClient, args: argparse.Namespace) -> dict[str, int]:
    """One label (REQUEST_ID LABEL; a label that reads as a number is sent as one, unless --text)
    or a file of them."""
    if args.file is None:
        if args.request_id is None or args.label is None:
            raise ValueError("feedback needs REQUEST_ID LABEL, or --file")
        return client.feedback(args.request_id, args.label if args.text else label_of(args.label))
    text = args.file.read_text(encoding="utf-8")
    if args.file.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        pairs = [(row["request_id"], row["label"] if args.text else label_of(row["label"])) for row in rows]
    else:
        pairs = [(line["request_id"], line["label"]) for line in map(json.loads, filter(str.strip, text.splitlines()))]
    return client.feedback_many(pairs)


def label_of(text: str) -> Any:
    """A label typed on a command line: a number when it reads as one, else the text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def show(args: argparse.Namespace, document: Any) -> None:
    if args.json:
        print(json.dumps(document, separators=(",", ":")))
    else:
        print(json.dumps(document, indent=2))


def show_predictions(args: argparse.Namespace, answers: Any) -> None:
    """One answer as JSON; many as a table: each record's position in the file (with --request-id,
    the id feedback names it by), then its label and probability, or its predicted value."""
    if args.json or isinstance(answers, dict):
        show(args, answers)
        return
    classified = bool(answers) and "label" in answers[0]
    header = [
        "RECORD",
        *(["REQUEST_ID"] if args.request_id else []),
        *(["LABEL", "PROBABILITY"] if classified else ["PREDICTION"]),
    ]
    rows = []
    for i, answer in enumerate(answers):
        named = [f"{args.request_id}/{i}"] if args.request_id else []
        scored = [str(answer["label"]), f"{answer['probability']:.4f}"] if classified else [str(answer["prediction"])]
        rows.append([str(i), *named, *scored])
    table(header, rows)


def show_models(args: argparse.Namespace, models: list[dict[str, Any]]) -> None:
    if args.json:
        show(args, models)
        return
    rows = []
    for model in models:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted((model.get("metrics") or {}).items()))
        rows.append([model["model_key"], str(model.get("name")), str(model.get("created_at")), metrics])
    table(["MODEL_KEY", "NAME", "CREATED_AT", "METRICS"], rows)


def table(header: list[str], rows: list[list[str]]) -> None:
    """Rows under their header, each column as wide as its widest cell (the last one unpadded)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]).rstrip())


def aliases_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}={version}" for alias, version in sorted(aliases.items()))


def show_registry(args: argparse.Namespace, found: Any) -> None:
    """The names, one a line (name, aliases, versions), or one name's entry (show_entry)."""
    if isinstance(found, dict):
        show_entry(args, found)
    elif args.json:
        show(args, found)
    else:
        for model in found:
            print(f"{model['name']}\t{aliases_text(model['aliases'])}\t{model['versions']} versions")


def show_entry(args: argparse.Namespace, entry: dict[str, Any]) -> None:
    """A name's entry: its aliases, a line per version (newest first) and the latest moves."""
    if args.json:
        show(args, entry)
        return
    print(f"{entry['name']}\taliases: {aliases_text(entry['aliases']) or 'none'}")
    pointing: dict[int, list[str]] = {}
    for alias, version in sorted(entry["aliases"].items()):
        pointing.setdefault(version, []).append(alias)
    for version in reversed(entry["versions"]):
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted((version.get("metrics") or {}).items()))
        decided = version.get("decision")
        decision = decided.get("decision", "") if isinstance(decided, dict) else ""
        aliases = ",".join(pointing.get(version["version"], []))
        print(f"  {version['version']}\t{version['model_key']}\t{version.get('created_at')}\t{metrics}\t{decision}"
              f"\t{aliases}".rstrip())  # fmt: skip
    for move in entry["history"][:5]:
        print(f"  {move['time']}\t{move['alias']}: {move['from']} -> {move['to']} ({move['why']})")


def show_monitor(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """The report's headline: the window, quality, then each feature, drifted ones first."""
    if args.json:
        show(args, report)
        return
    print(f"{report['name']} version {report['version']} ({report['model_key']}): {report['count']} predictions "
          f"since {report['since']}")  # fmt: skip
    if report.get("message"):
        print(report["message"])
    quality = report["quality"]
    figures = ", ".join(f"{k}={v:.4g}" for k, v in quality.items() if k != "labelled" and v is not None)
    print(f"quality on {quality['labelled']} labelled: {figures or '-'}")
    features = report["drift"]["features"]
    for key in sorted(features, key=lambda k: (not features[k]["drifted"], k)):
        print(drift_line(key, features[key]))
    if report["drift"].get("score"):
        print(drift_line("(score)", report["drift"]["score"]))


def drift_line(key: str, found: dict[str, Any]) -> str:
    if found["p_value"] is None:
        return f"{key}\t-"
    verdict = "DRIFTED" if found["drifted"] else "ok"
    return f"{key}\t{verdict}\tpsi={found['psi']:.3f}\tp={found['p_value']:.3g}"


if __name__ == "__main__":
    sys.exit(main())
