"""Reading a dataset body as documents: CSV (header line, delimiter detected, cells typed as
mongoimport types them) and a JSON array of objects (a record at a time), each document refused,
naming its line or item, unless MongoDB can store it. Nothing here writes: the all-or-nothing load
is datasetloader's.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from predictionservice.defaults import MAX_BAD_LINES_NAMED, MAX_DOCUMENT_BYTES, SETTINGS
from predictionservice.exceptions import InvalidDataset, InvalidJSON, shown
from predictionservice.validation import MAX_DEPTH, parse_json

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
        raise InvalidDataset(f"{where}: field name {shown(name)} may not start with '$' or hold '.' or NUL")
    return name


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
        raise InvalidDataset(shown(f"header: duplicate column(s) {', '.join(duplicated)}", 200, quote=False))
    return names, delimiter


@dataclass
class BadLines:
    """A CSV's bad lines: every one counted, the first MAX_BAD_LINES_NAMED named with their reasons.
    skip: the good lines are still loaded (?on_error=skip); else one bad line refuses the file."""

    skip: bool = False
    count: int = 0
    named: list[dict[str, Any]] = field(default_factory=list)

    def add(self, line: int, reason: str, **more: Any) -> None:
        self.count += 1
        if len(self.named) < MAX_BAD_LINES_NAMED:
            self.named.append({"line": line, "reason": reason, **more})

    def refusal(self) -> InvalidDataset:
        """The whole file refused, naming the first bad lines (every one counted)."""
        lines = "1 bad line" if self.count == 1 else f"{self.count} bad lines"
        first = "; ".join(f"line {bad['line']}: {bad['reason']}" for bad in self.named[:5])
        more = f"; ... (details name the first {len(self.named)})" if self.count > 5 else ""
        why = "no good line" if self.skip else "nothing was stored (?on_error=skip loads the good lines)"
        return InvalidDataset(f"{lines}, {why}: {first}{more}", details=list(self.named))


def iter_csv_documents(
    text: IO[str],
    delimiter: str | None = None,
    *,
    max_columns: int = MAX_COLUMNS,
    max_header_chars: int = MAX_HEADER_CHARS,
    bad: BadLines | None = None,
) -> Iterator[dict[str, Any]]:
    """Documents of a CSV text stream with a header line. Every bad line is counted in bad (a
    ragged row, malformed quoting, a row over 16 MiB); without bad.skip the documents stop at the
    first one, the rest only read to count, and InvalidDataset names them at the end. Text that is
    not UTF-8 refuses the file at once: where its lines end cannot be known."""
    bad = bad if bad is not None else BadLines()
    names, delimiter = read_header(text, delimiter, max_columns, max_header_chars)
    decimal_comma = delimiter != ","  # 1,5 in a ';' or tab file is one and a half
    width = len(names)
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    good = 0
    for line, row in _csv_rows(reader, bad):
        if not row:
            continue
        if len(row) != width:
            bad.add(line, f"{len(row)} fields where the header has {width}", fields=len(row), expected=width)
        elif sum(map(len, row)) > MAX_DOCUMENT_BYTES:
            bad.add(line, "the row is larger than a MongoDB document may be (16 MiB)")
        elif bad.skip or not bad.count:
            good += 1
            yield {name: typed(value, decimal_comma) for name, value in zip(names, row, strict=False)}
    if bad.count and not (bad.skip and good):
        raise bad.refusal()


def _csv_rows(reader: Any, bad: BadLines) -> Iterator[tuple[int, list[str]]]:
    """Each row with its line number (the header is line 1); a row of malformed CSV (a stray
    quote) is counted in bad and the reading goes on after it."""
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise InvalidDataset(f"after line {line}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            bad.add(reader.line_num + 1, f"malformed CSV ({shown(str(exc), 200, quote=False)})")
            continue
        line = reader.line_num + 1
        yield line, row


def iter_json_documents(data: Any, *, max_fields: int = MAX_COLUMNS) -> Iterator[dict[str, Any]]:
    """Documents of a parsed JSON body: an array of objects with storable field names."""
    if not isinstance(data, list):
        raise InvalidDataset("a JSON dataset must be an array of objects")
    for index, doc in enumerate(data):
        yield checked_document(doc, index, max_fields)


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
            _check_value(item, f"{where}.{shown(key, 40, quote=False)}")
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _check_value(item, f"{where}[{position}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidDataset(f"{where}: not a finite number")


def text_stream(binary: IO[bytes]) -> IO[str]:
    """A strict UTF-8 text view of bytes (BOM dropped), with CSV's newline handling."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")
