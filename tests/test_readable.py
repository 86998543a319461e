"""web/readable.py: the pages' numbers, percentages, ages and durations, as people write them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from web import readable

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (48380.47, "48,380"),  # an RMSE, once "4.838e+04"
        (45211, "45,211"),
        (0.14583409, "0.1458"),
        (0.9, "0.9"),
        (12.5, "12.5"),
        (1.0, "1"),
        (-2.0004, "-2"),
        (0.0, "0"),
        (0.00001234, "1.234e-05"),
        (123.456, "123.5"),
        (float("nan"), "nan"),
        (True, "True"),
        ("text", "text"),
        (None, "None"),
    ],
)
def test_a_number_reads_as_people_write_it(value, text):
    assert readable.number(value) == text


def test_a_probability_is_a_percentage_with_one_decimal():
    assert readable.percent(0.14583) == "14.6 %" and readable.percent(1) == "100.0 %"
    assert readable.percent(None) == "None"


@pytest.mark.parametrize(
    ("iso", "words"),
    [
        ("2026-12-06T11:59:30Z", "just now"),
        ("2026-12-06T11:59:00+00:00", "1 minute ago"),
        ("2026-12-06T08:59:59.5Z", "3 hours ago"),
        ("2026-12-05T12:00:00Z", "1 day ago"),
        ("2026-10-01T12:00:00Z", "2 months ago"),
        ("2024-12-06T12:00:00", "2 years ago"),  # no offset: taken as UTC
        ("2026-12-06T13:00:00Z", "just now"),  # a clock ahead
        ("not a time", "not a time"),
    ],
)
def test_an_age_is_its_largest_whole_unit(iso, words):
    assert readable.ago(iso, NOW) == words


def test_the_exact_time_is_to_the_second_in_utc():
    assert readable.exact("2026-12-06T09:00:00.123+02:00") == "2026-12-06 07:00:00 UTC"
    assert readable.exact(None) == "" and readable.exact("x") == "x"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.85, "850 ms"), (4.25, "4.2 s"), (42.4, "42 s"), (185, "3 min 05 s"), (7440, "2 h 04 min"), (None, "")],
)
def test_a_duration_reads_in_its_units(seconds, text):
    assert readable.duration(seconds) == text
