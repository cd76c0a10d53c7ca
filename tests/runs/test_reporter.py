"""The reporter writes what the engine streams onto the row; values learner code could forge
(it shares the engine's process) are bounded or dropped, and never stop the heartbeat."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from labs.models import Submission
from labs.training.events import ANALYSIS_CONFUSIONS, ANALYSIS_MISTAKES, ANALYSIS_TEXT_CHARS
from runs.reporter import RunReporter, parse_event


@pytest.fixture
def running(learner, lab) -> Submission:
    long_ago = timezone.now() - datetime.timedelta(minutes=10)
    return Submission.objects.create(
        learner=learner,
        lab=lab,
        code="x = 1",
        status="running",
        deliveries=1,
        heartbeat_at=long_ago,
    )


@pytest.mark.parametrize(
    "line",
    [
        '{"event": "step", "step": -5, "loss": 0.5}',
        '{"event": "step", "step": 3, "loss": NaN}',
        '{"event": "step", "step": 3, "loss": Infinity}',
        '{"event": "step", "step": 3, "loss": 1e400}',
        '{"event": "step", "step": 99999999999999, "loss": 0.5}',
        '{"event": "step", "step": "three", "loss": 0.5}',
        '{"event": "start", "total_steps": "many"}',
        '{"event": "epoch", "epoch": NaN, "dev_loss": 0.1}',
    ],
)
def test_a_forged_event_value_is_dropped_and_the_heartbeat_goes_on(running, line):
    reporter = RunReporter(running)
    reporter.handle_line(line)
    reporter.handle_line('{"event": "step", "step": 1, "loss": 0.75, "epoch": 0.1}')
    reporter.flush(force=True)

    running.refresh_from_db()
    assert not reporter.lost_ownership and reporter.database_down_since is None
    assert timezone.now() - running.heartbeat_at < datetime.timedelta(seconds=30)
    assert running.step == 1
    assert running.loss_curve == [[1, 0.75]]
    assert running.total_steps >= 0
    json.dumps(running.run_info, allow_nan=False)  # stored JSON is strict JSON


def test_parse_event_bounds_strings_lists_and_nesting():
    deep = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    event = parse_event(
        json.dumps(
            {"event": "done", "text": "x" * 10**6, "items": list(range(10**4)), "deep": deep}
        )
    )
    assert event is not None
    assert len(event["text"]) == 4000
    assert len(event["items"]) == 100
    assert event["deep"]["a"]["b"]["c"] is None


@pytest.mark.parametrize("line", ["not json", "[1, 2]", '"start"', ""])
def test_a_line_that_is_not_an_event_object_is_ignored(line):
    assert parse_event(line) is None


def test_the_code_imported_event_moves_the_run_panel_on_to_the_hooks(running):
    reporter = RunReporter(running)
    reporter.handle_line('{"event": "loading_code"}')
    running.refresh_from_db()
    assert running.counts_as_attempt and not running.run_info.get("code_imported")

    reporter.handle_line('{"event": "code_imported"}')

    running.refresh_from_db()
    assert running.run_info == {"code_imported": True}
    assert reporter.tampered is None  # an engine event, not a stray line of the learner's


def _analysis(**overrides) -> str:
    event = {
        "event": "dev_analysis",
        "dev_examples": 30,
        "dev_mistakes": 4,
        "mistakes": [
            {"text": "up up", "label": "good", "predicted": "bad", "confidence": 0.8, "loss": 2.1}
        ],
        "confusions": [{"label": "good", "predicted": "bad", "count": 3, "example": "up up"}],
        **overrides,
    }
    return json.dumps(event)


def test_the_dev_analysis_is_stored_on_the_run_for_the_result_panel(running):
    reporter = RunReporter(running)
    reporter.handle_line(_analysis())
    reporter.flush(force=True)
    running.refresh_from_db()
    stored = running.run_info["dev_analysis"]
    assert stored["mistakes"][0] == {
        "text": "up up",
        "label": "good",
        "predicted": "bad",
        "confidence": 0.8,
        "loss": 2.1,
    }
    assert stored["confusions"] == [
        {"label": "good", "predicted": "bad", "count": 3, "example": "up up"}
    ]
    assert (stored["dev_examples"], stored["dev_mistakes"]) == (30, 4)


GOOD = {"text": "t", "label": "good", "predicted": "bad", "confidence": 0.5, "loss": 1.0}


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD, "label": "excellent"},  # not one of the lab's labels
        {**GOOD, "predicted": "<script>"},
        {**GOOD, "predicted": "good"},  # right, so not a mistake
        {**GOOD, "confidence": 1.5},
        {**GOOD, "confidence": -0.1},
        {**GOOD, "confidence": "high"},
        {**GOOD, "loss": -1},
        {**GOOD, "text": 42},
        "not an entry",
    ],
)
def test_a_forged_mistake_is_dropped_and_the_valid_ones_kept(running, bad):
    line = _analysis(mistakes=[bad, GOOD], confusions=[])
    reporter = RunReporter(running)
    reporter.handle_line(line)
    reporter.flush(force=True)
    running.refresh_from_db()
    assert running.run_info["dev_analysis"]["mistakes"] == [GOOD]
    assert not reporter.tampered  # an engine event with bad values: dropped, not a stop


def test_non_finite_confidences_and_counts_past_the_dev_split_are_dropped(running):
    line = _analysis(
        mistakes=[],
        confusions=[
            {"label": "good", "predicted": "bad", "count": 31, "example": "x"},  # > dev size
            {"label": "good", "predicted": "bad", "count": 0, "example": "x"},
            {"label": "good", "predicted": "bad", "count": 2.5, "example": "x"},
            {"label": "good", "predicted": "meh", "count": 2, "example": "kept"},
        ],
    )
    nan_mistake = '{"text": "t", "label": "good", "predicted": "bad", "confidence": NaN, "loss": 1}'
    line = line.replace('"mistakes": []', f'"mistakes": [{nan_mistake}]')
    reporter = RunReporter(running)
    reporter.handle_line(line)
    reporter.flush(force=True)
    running.refresh_from_db()
    stored = running.run_info["dev_analysis"]
    assert stored["mistakes"] == []
    assert stored["confusions"] == [
        {"label": "good", "predicted": "meh", "count": 2, "example": "kept"}
    ]


def test_an_oversized_dev_analysis_is_cut_to_the_engines_bounds(running):
    mistakes = [{**GOOD, "text": "w" * 5000} for _ in range(90)]
    confusions = [{"label": "good", "predicted": "bad", "count": 1, "example": "e" * 5000}] * 90
    reporter = RunReporter(running)
    reporter.handle_line(_analysis(mistakes=mistakes, confusions=confusions))
    reporter.flush(force=True)
    running.refresh_from_db()
    stored = running.run_info["dev_analysis"]
    assert len(stored["mistakes"]) == ANALYSIS_MISTAKES
    assert len(stored["confusions"]) == ANALYSIS_CONFUSIONS
    assert {len(m["text"]) for m in stored["mistakes"]} == {ANALYSIS_TEXT_CHARS}
    assert {len(c["example"]) for c in stored["confusions"]} == {ANALYSIS_TEXT_CHARS}


def test_a_dev_analysis_with_nothing_valid_leaves_the_run_without_one(running):
    reporter = RunReporter(running)
    reporter.handle_line(_analysis(mistakes="lots", confusions={"a": 1}))
    reporter.flush(force=True)
    running.refresh_from_db()
    assert "dev_analysis" not in running.run_info
