"""Numbers and times as the pages write them for people: ``48,380`` not ``4.838e+04``, ``0.1458``
not ``0.14583409``, "3 hours ago" with the exact time beside it (the API keeps its exact values;
only the pages round)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

SIGNIFICANT = 4  # digits a number below 1,000 keeps
UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def number(value: Any) -> str:
    """A number for a person: whole numbers and anything of 1,000 or more with thousands
    separators and no decimals, the rest with four significant digits (trailing zeros dropped);
    a tiny magnitude in scientific notation. Anything else as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value) or value == 0:
        return "0" if value == 0 else str(value)
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size < 1e-4:
        return f"{value:.{SIGNIFICANT - 1}e}"
    decimals = max(0, SIGNIFICANT - 1 - math.floor(math.log10(size)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(value: Any) -> str:
    """A probability as a percentage with one decimal (``14.6 %``)."""
    return f"{100 * float(value):.1f} %" if isinstance(value, (int, float)) else str(value)


def moment(iso: Any) -> datetime | None:
    """The time an ISO 8601 string (the API's ``created_at``) names, in UTC; None if it is none."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def exact(iso: Any) -> str:
    """The exact time to the second (``2026-12-06 05:40:12 UTC``), or the text as it came."""
    when = moment(iso)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else str(iso or "")


def ago(iso: Any, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit ("3 hours ago", "just now"); a time in the
    future (a clock ahead) reads "just now" too."""
    when = moment(iso)
    if when is None:
        return str(iso or "")
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    for unit, size in UNITS:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def duration(seconds: Any) -> str:
    """A duration for a person: ``850 ms``, ``42 s``, ``3 min 05 s``, ``2 h 04 min``."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
