"""The dataset command line: load a CSV or JSON file into a collection (what mongoimport does),
or download the sample dataset. Run as ``python -m predictionservice.datasetloader`` (the command
the manual gives) or ``python -m predictionservice.datasetcli``:

    python -m predictionservice.datasetloader load bank-full.csv --db datasets --collection bank
    python -m predictionservice.datasetloader load messy.csv -c messy --on-error skip
    python -m predictionservice.datasetloader download --dest data/
"""

from __future__ import annotations

import argparse
import json
import sys

import pymongo

from predictionservice.datasetloader import DEFAULT_BATCH, load_csv, load_json
from predictionservice.datasetreaders import BadLines
from predictionservice.datasets import ON_ERROR
from predictionservice.sampledata import UCI_BANK_SHA256, UCI_BANK_URL, download_bank


def main(argv: list[str] | None = None) -> int:
    from predictionservice.config import load_parameters

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="load a CSV (or a JSON array) into a collection")
    load.add_argument("file")
    load.add_argument("--db", "-d", default="datasets")
    load.add_argument("--collection", "-c", required=True)
    load.add_argument("--append", action="store_true", help="append instead of replacing")
    load.add_argument("--delimiter", help="default: detected from the header line")
    load.add_argument("--uri", help="MongoDB URI (default: mongodb_uri of the configuration)")
    load.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    load.add_argument(
        "--on-error", choices=ON_ERROR, default="fail",
        help="a CSV's bad lines: fail refuses the file naming them (the default), skip loads the good lines",
    )  # fmt: skip
    down = sub.add_parser("download", help="download bank-full.csv from the UCI archive")
    down.add_argument("--dest", default="data")
    down.add_argument("--url", default=UCI_BANK_URL)
    down.add_argument("--sha256", default=UCI_BANK_SHA256, help="'' to skip the check")
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            print(download_bank(args.dest, url=args.url, sha256=args.sha256 or None))
            return 0
        from predictionservice.mongotarget import check_namespace

        check_namespace(args.db, args.collection)
        params = load_parameters()
        client: pymongo.MongoClient = pymongo.MongoClient(
            args.uri or params["mongodb_uri"], serverSelectionTimeoutMS=params["mongodb_timeout_ms"]
        )
        collection = client[args.db][args.collection]
        mode = "append" if args.append else "replace"
        if args.file.endswith(".json"):
            with open(args.file, "rb") as f:
                n = load_json(collection, f, mode=mode, batch_size=args.batch_size)
        else:
            bad = BadLines(skip=args.on_error == "skip")
            n = load_csv(
                collection, args.file, mode=mode, delimiter=args.delimiter, batch_size=args.batch_size, bad=bad
            )
        answer = {"inserted": n, "collection": collection.full_name}
        if args.on_error == "skip" and not args.file.endswith(".json"):
            answer.update(skipped=bad.count, bad_lines=bad.named)
        print(json.dumps(answer))
        return 0
    except Exception as exc:  # a command line reports, it does not dump a trace
        from predictionservice.exceptions import ServiceError

        if not isinstance(exc, (ServiceError, OSError, pymongo.errors.PyMongoError, ValueError)):
            raise
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
