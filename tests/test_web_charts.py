"""web/charts.py: the geometry the pages draw as SVG, pure and checked on numbers whose picture is
known: bars ranked by magnitude and cut to a limit, signed around a centred zero line only when a
value is negative, and histogram bins that count every finite value once."""

from __future__ import annotations

import math

import pytest

from web.charts import LABEL_WIDTH, MAX_BARS, ROW, WIDTH, bar_chart, histogram


def test_positive_bars_start_at_the_label_column_longest_first():
    chart = bar_chart("importances", [("a", 0.2), ("b", 0.6), ("c", 0.4)])
    assert [bar.label for bar in chart.bars] == ["b", "c", "a"]
    assert chart.zero == LABEL_WIDTH and all(bar.x == LABEL_WIDTH and not bar.negative for bar in chart.bars)
    longest = chart.bars[0].width
    assert [round(bar.width / longest, 6) for bar in chart.bars] == [1, round(0.4 / 0.6, 6), round(0.2 / 0.6, 6)]
    assert chart.height == 3 * ROW + 8 and chart.note == ""


def test_a_negative_value_centres_the_zero_line_and_its_bar_ends_there():
    chart = bar_chart("coefficients", [("up", 2.0), ("down", -1.0)])
    up, down = chart.bars
    assert chart.zero > LABEL_WIDTH and up.x == chart.zero and down.negative
    assert down.x + down.width == pytest.approx(chart.zero) and up.width == pytest.approx(2 * down.width)
    assert chart.zero + up.width < WIDTH  # the value's text still fits


def test_past_the_limit_only_the_largest_are_drawn_and_the_note_says_so():
    items = [(f"f{i}", float(i)) for i in range(MAX_BARS + 5)]
    chart = bar_chart("many", items)
    assert len(chart.bars) == MAX_BARS and chart.bars[0].label == f"f{MAX_BARS + 4}"
    assert chart.note == f"the {MAX_BARS} largest of {MAX_BARS + 5}"
    assert bar_chart("none", []).bars == ()  # no values: no division by zero


def test_a_histogram_counts_every_finite_value_once_in_its_bin():
    values = [0.0, 0.5, 1.5, 9.99, 10.0, math.nan, math.inf]
    chart = histogram("scores", values, bins=10)
    counts = [int(bar.text) for bar in chart.bars]
    assert counts == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2] and chart.note == "5 values"
    assert chart.bars[0].label == "0 to 1" and chart.bars[-1].label == "9 to 10"
    tallest = max(bar.height for bar in chart.bars)
    assert chart.bars[0].height == tallest == chart.bars[-1].height


def test_values_outside_the_given_range_fall_in_the_end_bins_and_one_value_has_a_range():
    counts = [int(bar.text) for bar in histogram("p", [-5.0, 0.5, 5.0], bins=2, low=0.0, high=1.0).bars]
    assert counts == [1, 2]
    single = histogram("one", [3.0, 3.0], bins=4)
    assert sum(int(bar.text) for bar in single.bars) == 2 and single.bars[0].label == "3 to 3.25"
