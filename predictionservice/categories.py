"""How a value is looked up among a schema's categories (a feature's or the label's ``values``,
a JSON object: its keys are strings). One rule for every reader, so the drift monitor counts a
logged value under the category the model encoded it as: the chapter's dataparser encodes records
by it, predictionservice/monitor.py bins logged records and answers by it, and
predictionservice/sparkfeatures.py spells the same rule as Spark columns.
"""

from __future__ import annotations

from typing import Any


def category_key(value: Any) -> str | None:
    """The key a value is looked up by: a string as it is, an integer (or an integral float: JSON
    may write 3 as 3.0) as its decimal digits; None (no category) for anything else, booleans
    included (True is an int to Python, not the category "1")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None
