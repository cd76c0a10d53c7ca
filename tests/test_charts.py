"""Chart axes carry round ticks: whole steps, losses to one or two significant digits."""

from __future__ import annotations

import re

from academy import charts


def axes(points: list[tuple[float, float]], total_steps: int) -> tuple[list[str], list[str]]:
    """The loss chart's (y tick labels, x tick labels)."""
    svg = charts.line_chart(
        [("training loss", points, "train")],
        title="Training loss by step",
        x_label="step",
        y_label="loss",
        x_max=total_steps,
        x_integer=True,
    )
    y = re.findall(r'class="tick"[^>]*text-anchor="end">([^<]*)<', svg)
    x = re.findall(r'class="tick"[^>]*text-anchor="middle">([^<]*)<', svg)
    return y, x


def significant_digits(label: str) -> int:
    return len(label.replace(".", "").replace(",", "").strip("0") or "0")


def test_a_run_has_whole_step_ticks_and_round_loss_ticks():
    y, x = axes([(1, 1.1), (5, 0.6), (17, 0.287)], total_steps=17)
    assert x == ["0", "5", "10", "15"]
    assert y == ["0.0", "0.5", "1.0", "1.5"]  # the top loss, 1.1 (+5%), rounded up
    assert all(significant_digits(label) <= 2 for label in y)


def test_steps_are_whole_numbers_even_for_a_tiny_run():
    y, x = axes([(1, 0.9), (3, 0.287)], total_steps=3)
    assert x == ["0", "1", "2", "3"]
    assert y == ["0.00", "0.25", "0.50", "0.75", "1.00"]


def test_a_long_run_groups_its_thousands():
    _, x = axes([(0, 2.0), (12_000, 0.3)], total_steps=12_000)
    assert x == ["0", "5,000", "10,000"]


def test_nice_steps():
    assert charts.nice_step(34, integer=True) == 10
    assert charts.nice_step(3, integer=True) == 1
    assert charts.nice_step(0.301) == 0.1
    assert charts.nice_step(1.2) == 0.5
    assert charts.nice_step(0.09) == 0.025
