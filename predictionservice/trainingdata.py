"""What training learns of its input before it fits anything: that the fields exist, which rows
could not be encoded and why, and that what is left can teach the algorithm something.

Every check names the problem in words a person can act on; the algorithms share them, so a
missing field or a class with no row reads the same whatever the algorithm. A parser is taken by
its shape (``label_key``, ``features``, ``task``, ``class_names``), as everywhere in the library.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from predictionservice.exceptions import InvalidSchema, NotFound, ServiceError

ERROR_EXAMPLES = 3


def check_fields(collection: Any, source: Any, parser: Any) -> None:
    """The label and every feature occur in the collection (in its first document, or else in
    any), and it has a document: asked when no row of the read could be used, to say why."""
    first = collection.find_one({})
    if first is None:
        raise NotFound(f"input collection {source} is empty or does not exist")
    keys = [parser.label_key, *(f.key for f in parser.features)]
    missing = [k for k in keys if k not in first and collection.find_one({k: {"$exists": True}}, {"_id": 1}) is None]
    if parser.label_key in missing:
        raise InvalidSchema(f"label field '{parser.label_key}' not found in {source}")
    if missing:
        names = ", ".join(f"'{k}'" for k in missing)
        raise InvalidSchema(f"feature field{'s' if len(missing) > 1 else ''} {names} not found in {source}")


def check_rows(parser: Any, source: Any, total: int, invalid: dict[str, int], classes: dict[Any, int]) -> None:
    """Something is left to learn from: a usable row at all, and for classification a row of every
    class the schema names (Spark sizes a model by the classes it sees)."""
    if total - sum(invalid.values()) <= 0:
        raise ServiceError(
            f"no usable row in {source}: all {total} rows were rejected ({describe(invalid)})", code="invalid_schema"
        )
    if parser.task == "regression":
        return
    names = parser.class_names
    absent = [names[i] for i in range(len(names)) if classes.get(float(i), 0) == 0]
    if len(absent) == len(names) - 1:
        only = next(n for i, n in enumerate(names) if classes.get(float(i), 0))
        raise InvalidSchema(f"label '{parser.label_key}' in {source} has only one class ({only!r}): nothing to learn")
    if absent:
        shown = ", ".join(repr(n) for n in absent[:ERROR_EXAMPLES])
        raise InvalidSchema(
            f"label '{parser.label_key}' in {source} has no usable row of class {shown}"
            f"{' and others' if len(absent) > ERROR_EXAMPLES else ''}: drop it from schema.label.values or add rows"
        )


def invalid_counts(stats: Iterable[Any]) -> dict[str, int]:
    """Rows that could not be encoded, counted by reason, from a groupBy("error", ...).count():
    a reason seen with several labels sums their counts."""
    invalid: dict[str, int] = {}
    for r in stats:
        if r["error"] is not None:
            invalid[r["error"]] = invalid.get(r["error"], 0) + r["count"]
    return invalid


def reasons(invalid: dict[str, int]) -> dict[str, int]:
    """The first few reasons, for the stored model and the job's result."""
    return dict(list(invalid.items())[:ERROR_EXAMPLES])


def skipping(invalid: dict[str, int]) -> str:
    """The tail of a progress message: what rows are skipped and why."""
    return f"; skipping {describe(invalid)}" if invalid else ""


def describe(invalid: dict[str, int]) -> str:
    parts = [f"{count} rows where {reason}" for reason, count in sorted(invalid.items(), key=lambda kv: -kv[1])]
    shown = "; ".join(parts[:ERROR_EXAMPLES])
    return shown + (f"; and {len(parts) - ERROR_EXAMPLES} other reasons" if len(parts) > ERROR_EXAMPLES else "")
