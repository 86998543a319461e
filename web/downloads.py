"""A dataset as a file to save: the answer of GET /datasets/<db>/<collection>/export and of the
datasets page's download links (no blueprint: both resources' routes answer with it)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, stream_with_context

from web.services import services

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def export(db: str, collection: str, fmt: str) -> Response:
    """The whole collection, streamed a batch at a time (a generator response): memory holds one
    batch, never the collection; a missing dataset or an unknown format is refused before the
    answer starts."""
    chunks = services().datasets.export(db, collection, fmt)
    headers = {"Content-Disposition": attachment(f"{db}.{collection}.{fmt}"), "X-Content-Type-Options": "nosniff"}
    return Response(stream_with_context(chunks), mimetype=EXPORT_TYPES[fmt], headers=headers)


def attachment(name: str) -> str:
    """A Content-Disposition naming the file a download is saved as (RFC 6266): the name cleaned
    to letters, digits and '._-' (a quote or ';' in a collection name cannot add parameters, a
    line break cannot end the header, and no name makes the header unencodable, a 500); a name
    beyond ASCII also as its UTF-8 form in filename* (RFC 5987), the ASCII filename for old clients."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._") or "export"
    fallback = "".join(c if c.isascii() else "_" for c in cleaned)
    if fallback == cleaned:
        return f'attachment; filename="{cleaned}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"
