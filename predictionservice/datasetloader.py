"""Loading datasets into MongoDB, all or nothing: the equivalent of

    mongoimport -d datasets -c bank --type csv --file bank-full.csv --headerline

Every load first fills a temporary collection; only a load that parsed and inserted completely
replaces the target (``renameCollection`` with ``dropTarget``) or is merged into it (append).
A ragged row, empty input or undecodable bytes therefore leave the target exactly as it was
(a CSV loaded with its bad lines skipped, on request, is still published whole or not at all).
The documents come from datasetreaders; the command line is datasetcli's, still run as

    python -m predictionservice.datasetloader load bank-full.csv --db datasets --collection bank
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import IO, Any

import bson.errors
import pymongo
from pymongo.collection import Collection

from predictionservice.datasetreaders import (
    MAX_COLUMNS,
    MAX_HEADER_CHARS,
    BadLines,
    JsonArrayReader,
    checked_document,
    iter_csv_documents,
    text_stream,
)
from predictionservice.defaults import DATASET_BATCH_BYTES
from predictionservice.exceptions import Conflict, InvalidDataset, shown
from predictionservice.tempcollections import LOADING_PREFIX, IdClash, publish, temp_name, tidy

DEFAULT_BATCH = 5000


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
        raise InvalidDataset(f"mode must be 'replace' or 'append', not {shown(mode)}")
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
        problem = shown(str(first.get("errmsg", exc)), 200, quote=False)
        raise InvalidDataset(f"document rejected by MongoDB: {problem}") from None
    except (OverflowError, bson.errors.InvalidDocument) as exc:  # an integer beyond 64 bits, over 16 MiB
        raise InvalidDataset(f"a document cannot be stored in MongoDB: {shown(str(exc), 200, quote=False)}") from None


def load_csv(
    collection: Collection,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    mode: str = "replace",
    delimiter: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    max_columns: int = MAX_COLUMNS,
    max_header_chars: int = MAX_HEADER_CHARS,
    bad: BadLines | None = None,
) -> int:
    """Load a CSV file (path or binary stream) with a header line. Returns documents inserted.
    A bad line refuses the whole file (InvalidDataset naming the bad lines, every one counted)
    unless bad says skip: then the good lines are loaded and bad names the others."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as binary:
            return load_csv(
                collection, binary, mode=mode, delimiter=delimiter, batch_size=batch_size,
                max_columns=max_columns, max_header_chars=max_header_chars, bad=bad,
            )  # fmt: skip
    text = text_stream(source)
    try:
        documents = iter_csv_documents(
            text, delimiter, max_columns=max_columns, max_header_chars=max_header_chars, bad=bad
        )
        return load_documents(collection, documents, mode=mode, batch_size=batch_size)
    finally:
        text.detach()


if __name__ == "__main__":  # the command people know; the command line itself is datasetcli's
    from predictionservice.datasetcli import main

    sys.exit(main())
