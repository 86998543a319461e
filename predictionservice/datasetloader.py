"""Loading datasets into MongoDB, all or nothing: the equivalent of

    mongoimport -d datasets -c bank --type csv --file bank-full.csv --headerline

as a library and a command line, plus a downloader for the upstream UCI archive.

Every load first fills a temporary collection; only a load that parsed and inserted completely
replaces the target (``renameCollection`` with ``dropTarget``) or is merged into it (append).
A ragged row, empty input or undecodable bytes therefore leave the target exactly as it was.

    python -m predictionservice.datasetloader load bank-full.csv --db datasets --collection bank
    python -m predictionservice.datasetloader download --dest data/
"""

from __future__ import annotations

import argparse
import codecs
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, Any

import bson.errors
import pymongo
from pymongo.collection import Collection

from predictionservice.defaults import DATASET_BATCH_BYTES, MAX_DOCUMENT_BYTES, SETTINGS
from predictionservice.exceptions import Conflict, InvalidDataset, InvalidJSON
from predictionservice.tempcollections import LOADING_PREFIX, IdClash, publish, temp_name, tidy
from predictionservice.validation import MAX_DEPTH, parse_json

DEFAULT_BATCH = 5000
UCI_BANK_URL = "https://archive.ics.uci.edu/static/public/222/bank+marketing.zip"
UCI_BANK_SHA256 = "67d672041a4b032e2973b06c18ec60c154886dd27b10dc199d8aa7b7a3d12052"
UCI_BANK_MEMBER = "bank-full.csv"
MAX_COLUMNS = SETTINGS["max_dataset_columns"].default
MAX_HEADER_CHARS = SETTINGS["max_csv_header_chars"].default

_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?\Z")
_INT64 = 2**63
_DECIMAL_COMMA = re.compile(r"[+-]?(?:\d+,\d*|,\d+)\Z")
ONE_LINE = (
    "the body is a single line with no line break: 'curl -d @file' strips a file's newlines; send the file "
    "as it is: curl -X PUT --data-binary @file.csv -H 'Content-Type: text/csv'"
)


def typed(value: str, decimal_comma: bool = False) -> Any:
    """A CSV cell as mongoimport would store it: numbers as numbers, empty as null. In a file
    delimited by ';' or a tab, '1,5' is the decimal-comma spelling of 1.5 (what a spreadsheet in
    most of Europe writes); with ',' as the delimiter no cell can hold one unquoted."""
    if value == "":
        return None
    first = value[0]
    if not (first.isdecimal() or first in "+-.,"):  # no number starts otherwise: a word, at once
        return value
    if first.isdecimal() and len(value) <= 20 and value.isdecimal():  # what _INT matches, unsigned
        number = int(value)
        return number if number < _INT64 else float(number)
    if decimal_comma and _DECIMAL_COMMA.match(value):
        return float(value.replace(",", "."))
    if len(value) <= 20 and _INT.match(value):  # longer: beyond 64 bits, and int() of over 4300 digits raises
        number = int(value)
        return number if -_INT64 <= number < _INT64 else float(number)
    if _FLOAT.match(value):
        number = float(value)
        return number if math.isfinite(number) else value
    return value


def check_field_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidDataset(f"{where}: field names must be non-empty strings")
    if name.startswith("$") or "." in name or "\x00" in name:
        raise InvalidDataset(f"{where}: field name {_clipped(repr(name))} may not start with '$' or hold '.' or NUL")
    return name


def _clipped(text: str, limit: int = 200) -> str:
    """A message part that echoes the client's names, bounded (a 100 kB header is not sent back)."""
    return text if len(text) <= limit else text[:limit] + "..."


def detect_delimiter(header: str) -> str:
    """The delimiter of a header line: the most frequent of ';', ',', tab outside quotes."""
    outside = re.sub(r'"[^"]*"', "", header)
    counts = {d: outside.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_header(text: IO[str], delimiter: str | None, max_columns: int, max_chars: int) -> tuple[list[str], str]:
    """The column names of a CSV's header line and its delimiter, the line read no further than
    max_chars (a header is never read whole into memory just to be refused)."""
    try:
        header_line = text.readline(max_chars + 1)
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"line 1: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if len(header_line) > max_chars:
        raise InvalidDataset(f"line 1: the header is longer than {max_chars} characters (max_csv_header_chars)")
    if not header_line.strip():
        raise InvalidDataset("empty input: expected a header line and at least one row")
    if not header_line.endswith(("\n", "\r")):  # no row can follow: the body was one line
        raise InvalidDataset(ONE_LINE)
    delimiter = delimiter or detect_delimiter(header_line)
    try:
        header = next(csv.reader([header_line], delimiter=delimiter))
    except csv.Error as exc:  # a cell past the csv module's field limit (131,072 characters)
        raise InvalidDataset(f"line 1: malformed CSV header ({exc})") from None
    if len(header) > max_columns:
        raise InvalidDataset(
            f"header: {len(header)} columns; a dataset has at most {max_columns} (max_dataset_columns)"
        )
    names = [check_field_name(n.strip(), "header") for n in header]
    duplicated = sorted(name for name, seen in Counter(names).items() if seen > 1)
    if duplicated:
        raise InvalidDataset(_clipped(f"header: duplicate column(s) {', '.join(duplicated)}"))
    return names, delimiter


def iter_csv_documents(
    text: IO[str],
    delimiter: str | None = None,
    *,
    max_columns: int = MAX_COLUMNS,
    max_header_chars: int = MAX_HEADER_CHARS,
) -> Iterator[dict[str, Any]]:
    """Documents of a CSV text stream with a header line. Raises InvalidDataset naming the line."""
    names, delimiter = read_header(text, delimiter, max_columns, max_header_chars)
    decimal_comma = delimiter != ","  # 1,5 in a ';' or tab file is one and a half
    width = len(names)
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    line = 1
    try:
        for row in reader:
            line = reader.line_num + 1
            if not row:
                continue
            if len(row) != width:
                raise InvalidDataset(
                    f"line {line}: {len(row)} fields where the header has {width}",
                    details=[{"line": line, "fields": len(row), "expected": width}],
                )
            if sum(map(len, row)) > MAX_DOCUMENT_BYTES:
                raise InvalidDataset(f"line {line}: the row is larger than a MongoDB document may be (16 MiB)")
            yield {name: typed(value, decimal_comma) for name, value in zip(names, row, strict=False)}
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"after line {line}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InvalidDataset(f"line {reader.line_num + 1}: malformed CSV ({exc})") from None


def iter_json_documents(data: Any, *, max_fields: int = MAX_COLUMNS) -> Iterator[dict[str, Any]]:
    """Documents of a parsed JSON body: an array of objects with storable field names."""
    if not isinstance(data, list):
        raise InvalidDataset("a JSON dataset must be an array of objects")
    for index, doc in enumerate(data):
        yield checked_document(doc, index, max_fields)


def load_json(
    collection: Collection,
    binary: IO[bytes],
    *,
    mode: str = "replace",
    batch_size: int = DEFAULT_BATCH,
    max_fields: int = MAX_COLUMNS,
) -> int:
    """Load a JSON array of objects from a binary stream, a record at a time: what a load holds
    is a batch (batch_size records or DATASET_BATCH_BYTES of their text, whichever comes first),
    never the whole body (parsed whole, 84 MB of '[1,{},{},...]' took 2.86 GB before its
    refusal). Each record is checked as it comes. Returns documents inserted."""
    reader = JsonArrayReader(binary)
    documents = (checked_document(doc, index, max_fields) for index, doc in enumerate(reader))
    return load_documents(collection, documents, mode=mode, batch_size=batch_size, read_bytes=reader.read_bytes)


def checked_document(doc: Any, index: int, max_fields: int) -> dict[str, Any]:
    """Item index of a JSON dataset, refused (naming the index) unless MongoDB can store it."""
    if not isinstance(doc, dict):
        raise InvalidDataset(f"item {index}: not an object", details=[{"index": index}])
    if len(doc) > max_fields:
        raise InvalidDataset(
            f"item {index}: {len(doc)} fields; a document has at most {max_fields} (max_dataset_columns)",
            details=[{"index": index}],
        )
    _check_value(doc, f"item {index}")
    return doc


_SPACES = re.compile(r"[ \t\r\n]*")
_TRUNCATION_TAIL = 16  # a value cut by the end of what was read fails within its last characters
JSON_CHUNK = 64 * 1024


class JsonArrayReader:
    """The items of a JSON array on a binary stream, parsed one at a time. The standard parser's
    raw_decode (C) finds where an item ends, reading more while the item is cut by the end of
    what was read (at least as much again each time: an item is scanned at most about twice);
    the item's own bytes then go to validation.parse_json, so a record is refused exactly as a
    whole body would be (NaN, lone surrogates, depth). A syntax error names its line and column
    in the whole body; an item that is not an object is refused by its index unparsed; one larger
    than a MongoDB document is refused once that much of it was read, never held whole."""

    def __init__(self, binary: IO[bytes], *, chunk: int = JSON_CHUNK, max_item_bytes: int = MAX_DOCUMENT_BYTES):
        self.binary, self.chunk, self.max_item_bytes = binary, chunk, max_item_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.scanner = json.JSONDecoder()
        self.text = ""
        self.at = 0  # the next character of text to look at
        self.line, self.column = 1, 1  # where text[0] is in the body
        self.read = 0  # bytes read from the stream so far
        self.eof = False

    def __iter__(self) -> Iterator[Any]:
        first = self._peek()
        if first is None:
            raise InvalidJSON("the request body is empty; a JSON document was expected")
        if first != "[":
            raise InvalidDataset("a JSON dataset must be an array of objects")
        self.at += 1
        index = 0
        while True:
            char = self._peek()
            if char == "]" and index == 0:  # []
                self.at += 1
                break
            if char == "{":
                yield self._object(index)
            elif char is None or char in ",]":
                raise self._malformed(f"a value was expected for item {index}", self.at)
            else:
                raise InvalidDataset(f"item {index}: not an object", details=[{"index": index}])
            index += 1
            char = self._peek()
            if char == "]":
                self.at += 1
                break
            if char != ",":
                raise self._malformed(f"',' or ']' was expected after item {index - 1}", self.at)
            self.at += 1
        if self._peek() is not None:
            raise self._malformed("extra data after the array", self.at)

    def _object(self, index: int) -> Any:
        """The object starting at self.at, parsed; self.at moves past it. The text before it is
        dropped only when more must be read (not once per item: a copy of the buffer each time)."""
        while True:
            start = self.at
            try:
                end = self.scanner.raw_decode(self.text, start)[1]
                break
            except json.JSONDecodeError as exc:
                cut = exc.pos >= len(self.text) - _TRUNCATION_TAIL or exc.msg.startswith("Unterminated string")
                if self.eof or not cut:
                    raise self._malformed(exc.msg, exc.pos) from None
            except RecursionError:
                raise InvalidJSON(f"JSON nested deeper than {MAX_DEPTH} levels") from None
            self._drop(start)
            if len(self.text) > self.max_item_bytes:
                raise self._too_large(index)
            self._read(min(max(self.chunk, len(self.text)), self.max_item_bytes + self.chunk - len(self.text)))
        self.at = end
        item = self.text[start:end].encode()
        if len(item) > self.max_item_bytes:
            raise self._too_large(index)
        try:
            return parse_json(item, max_depth=MAX_DEPTH - 1)
        except InvalidJSON as exc:
            raise InvalidJSON(f"item {index}: {exc.message}", details=[{"index": index}]) from None

    def _peek(self) -> str | None:
        """The next character that is not white space, self.at moved to it; None at the end."""
        while True:
            self.at = _SPACES.match(self.text, self.at).end()  # type: ignore[union-attr]
            if self.at < len(self.text):
                return self.text[self.at]
            self._drop(self.at)
            if self.eof:
                return None
            self._read(self.chunk)

    def _read(self, size: int) -> None:
        """At least size more bytes onto the text (fewer at the end of the body)."""
        parts = [self.text]
        while size > 0 and not self.eof:
            data = self.binary.read(min(size, 1 << 20))
            self.read += len(data)
            size -= len(data)
            self.eof = not data
            try:
                parts.append(self.decoder.decode(data, final=self.eof))
            except UnicodeDecodeError as exc:
                raise InvalidJSON(f"the request body is not UTF-8 text ({exc.reason} near byte {self.read})") from None
        self.text = "".join(parts)

    def read_bytes(self) -> int:
        return self.read

    def _drop(self, count: int) -> None:
        """Forget the first count characters of the text (read and done with), keeping their lines."""
        self.line, self.column = self._place(count)
        self.text = self.text[count:]
        self.at -= count

    def _place(self, position: int) -> tuple[int, int]:
        """The line and column of text[position] in the whole body."""
        newlines = self.text.count("\n", 0, position)
        if newlines:
            return self.line + newlines, position - self.text.rfind("\n", 0, position)
        return self.line, self.column + position

    def _too_large(self, index: int) -> InvalidDataset:
        return InvalidDataset(
            f"item {index}: larger than a MongoDB document may be (16 MiB of JSON text)", details=[{"index": index}]
        )

    def _malformed(self, problem: str, position: int) -> InvalidJSON:
        line, column = self._place(position)
        return InvalidJSON(f"malformed JSON: {problem.removesuffix(' at')} at line {line} column {column}")


def _check_value(value: Any, where: str) -> None:
    """Field names storable at every level: in objects, and in objects inside arrays (MongoDB
    refuses a '$' key in an array's object as it does at the top)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_field_name(key, where)
            _check_value(item, f"{where}.{_clipped(key, 40)}")
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _check_value(item, f"{where}[{position}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidDataset(f"{where}: not a finite number")


def _batches(
    docs: Iterable[dict[str, Any]], size: int, read_bytes: Callable[[], int] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Lists of size documents; with read_bytes (what the source has read so far), a list is
    also cut once DATASET_BATCH_BYTES were read for it: records of any size, a bounded batch."""
    batch: list[dict[str, Any]] = []
    start = read_bytes() if read_bytes else 0
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size or (read_bytes is not None and read_bytes() - start >= DATASET_BATCH_BYTES):
            yield batch
            batch = []
            start = read_bytes() if read_bytes else 0
    if batch:
        yield batch


def load_documents(
    collection: Collection,
    docs: Iterable[dict[str, Any]],
    *,
    mode: str = "replace",
    batch_size: int = DEFAULT_BATCH,
    read_bytes: Callable[[], int] | None = None,
) -> int:
    """Store docs in collection, replacing it or appending to it, all or nothing (read_bytes: see
    _batches)."""
    if mode not in ("replace", "append"):
        raise InvalidDataset(f"mode must be 'replace' or 'append', not {_clipped(repr(mode))}")
    db = collection.database
    temp = db[temp_name(LOADING_PREFIX, collection.name)]
    try:
        inserted = _insert_all(temp, _batches(docs, batch_size, read_bytes))
        if inserted == 0:
            raise InvalidDataset("empty input: no rows after the header")
    except BaseException:
        temp.drop()
        raise
    try:  # from here the publish owns temp: it drops it, or keeps it for its recovery
        publish(db, temp.name, collection.name, replace=mode == "replace")
    except IdClash as exc:
        raise Conflict(f"{exc}: an append adds new documents only; nothing was merged") from None
    tidy(db, LOADING_PREFIX)
    return inserted


def _insert_all(temp: Collection, batches: Iterator[list[dict[str, Any]]]) -> int:
    """Insert every batch into temp, one batch in flight while the next is parsed: the server
    stores batch k while this thread reads and types batch k+1 (pymongo waits for the answer
    without the GIL). Returns only once no insert is running any more, whatever happened, so
    nothing writes into temp after the caller drops it."""
    inserted = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-insert") as pool:
        pending: Future[None] | None = None
        try:
            for batch in batches:
                if pending is not None:
                    pending.result()  # its error (a refused document) stops the load here
                pending = pool.submit(_insert, temp, batch)
                inserted += len(batch)
            if pending is not None:
                pending.result()
        except BaseException:
            if pending is not None:
                wait([pending])  # the parse failed: let the batch in flight end before temp is dropped
            raise
    return inserted


def _insert(temp: Collection, batch: list[dict[str, Any]]) -> None:
    """One batch into the temporary collection; a document MongoDB cannot store is the client's."""
    try:
        temp.insert_many(batch, ordered=False)
    except pymongo.errors.BulkWriteError as exc:
        first = (exc.details.get("writeErrors") or [{}])[0]
        raise InvalidDataset(f"document rejected by MongoDB: {_clipped(str(first.get('errmsg', exc)))}") from None
    except (OverflowError, bson.errors.InvalidDocument) as exc:  # an integer beyond 64 bits, over 16 MiB
        raise InvalidDataset(f"a document cannot be stored in MongoDB: {_clipped(str(exc))}") from None


def text_stream(binary: IO[bytes]) -> IO[str]:
    """A strict UTF-8 text view of bytes (BOM dropped), with CSV's newline handling."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def load_csv(
    collection: Collection,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    mode: str = "replace",
    delimiter: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    max_columns: int = MAX_COLUMNS,
    max_header_chars: int = MAX_HEADER_CHARS,
) -> int:
    """Load a CSV file (path or binary stream) with a header line. Returns documents inserted."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as binary:
            return load_csv(
                collection, binary, mode=mode, delimiter=delimiter, batch_size=batch_size,
                max_columns=max_columns, max_header_chars=max_header_chars,
            )  # fmt: skip
    text = text_stream(source)
    try:
        documents = iter_csv_documents(text, delimiter, max_columns=max_columns, max_header_chars=max_header_chars)
        return load_documents(collection, documents, mode=mode, batch_size=batch_size)
    finally:
        text.detach()


def bank_csv_candidates(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where bank-full.csv may be, in order: the given path (BANK_CSV), ./data/, ../shared/data/
    beside this project and, in a git clone of a local repository (CI clones into a temporary
    folder), ../shared/data/ beside the repository it was cloned from."""
    project = Path(__file__).resolve().parent.parent
    places = [Path(explicit)] if explicit else []
    places += [project / "data" / UCI_BANK_MEMBER, project.parent / "shared" / "data" / UCI_BANK_MEMBER]
    origin = _origin_checkout(project)
    if origin is not None:
        places.append(origin.parent / "shared" / "data" / UCI_BANK_MEMBER)
    return places


def find_bank_csv(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    return next((p for p in bank_csv_candidates(explicit) if p.is_file()), None)


def _origin_checkout(project: Path) -> Path | None:
    config = project / ".git" / "config"
    try:
        text = config.read_text()
    except OSError:
        return None
    match = re.search(r'\[remote "origin"\][^\[]*?url\s*=\s*(\S+)', text)
    if not match or "://" in match.group(1) or ":" in match.group(1).split("/")[0]:
        return None  # not a local path (https://, git@host:...)
    origin = Path(match.group(1))
    origin = origin if origin.is_absolute() else (project / origin).resolve()
    return origin if origin != project and origin.is_dir() else None


def _find_member(archive: zipfile.ZipFile, member: str, depth: int = 0) -> bytes | None:
    """A file by base name inside a zip, looking into zips nested in it (UCI ships zip-in-zip)."""
    for info in archive.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base == member:
            return archive.read(info)
    if depth < 2:
        for info in archive.infolist():
            if info.filename.lower().endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(archive.read(info))) as inner:
                    found = _find_member(inner, member, depth + 1)
                    if found is not None:
                        return found
    return None


def download_bank(
    dest: str | os.PathLike[str],
    *,
    url: str = UCI_BANK_URL,
    sha256: str | None = UCI_BANK_SHA256,
    member: str = UCI_BANK_MEMBER,
    timeout: float = 60.0,
) -> Path:
    """Fetch the UCI archive, extract bank-full.csv, check its sha256, write it into dest.

    The file appears only when complete and verified; a bad archive or checksum raises
    InvalidDataset and writes nothing.
    """
    if not url.startswith(("http://", "https://")):
        raise InvalidDataset(f"{url}: only http(s) URLs are downloaded")
    dest_dir = Path(dest)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as spool:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            shutil.copyfileobj(response, spool, 1 << 20)
        spool.seek(0)
        try:
            with zipfile.ZipFile(spool) as archive:
                data = _find_member(archive, member)
        except zipfile.BadZipFile:
            raise InvalidDataset(f"{url}: not a zip archive") from None
    if data is None:
        raise InvalidDataset(f"{url}: the archive holds no {member}")
    actual = hashlib.sha256(data).hexdigest()
    if sha256 and actual != sha256:
        raise InvalidDataset(f"{member} from {url}: sha256 {actual}, expected {sha256}")
    target = dest_dir / member
    with tempfile.NamedTemporaryFile(dir=dest_dir, delete=False) as out:
        out.write(data)
    os.replace(out.name, target)
    return target


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
            n = load_csv(collection, args.file, mode=mode, delimiter=args.delimiter, batch_size=args.batch_size)
        print(json.dumps({"inserted": n, "collection": collection.full_name}))
        return 0
    except Exception as exc:  # a command line reports, it does not dump a trace
        from predictionservice.exceptions import ServiceError

        if not isinstance(exc, (ServiceError, OSError, pymongo.errors.PyMongoError, ValueError)):
            raise
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
