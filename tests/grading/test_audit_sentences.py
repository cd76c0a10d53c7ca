"""Audit events read as sentences on a transcript and in the admin (issue 17)."""

from __future__ import annotations

from django.urls import reverse

from grading.models import AuditEvent
from grading.reports.selectors import audit_sentence


def event(action: str, **detail: object) -> AuditEvent:
    return AuditEvent(action=action, detail=detail)


def test_a_regrade_that_changed_the_score_says_from_and_to():
    text = audit_sentence(
        event(
            AuditEvent.Action.REGRADED,
            from_score=54.41,
            to_score=60.07,
            from_passed=False,
            to_passed=True,
        )
    )
    assert text == "Score changed from 54.4 to 60.1; not passed → passed."


def test_an_unchanged_regrade_says_so():
    text = audit_sentence(
        event(
            AuditEvent.Action.REGRADED,
            from_score=54.41,
            to_score=54.41,
            from_passed=True,
            to_passed=True,
        )
    )
    assert text == "Re-graded: unchanged, 54.4 (passed)."


def test_due_dates_read_as_sentences():
    moved = event(AuditEvent.Action.DUE_DATE_CHANGED, to="2027-02-01", via_department="eng")
    moved.detail["from"] = "2027-01-05"
    assert (
        audit_sentence(moved)
        == "Due date moved from 2027-01-05 to 2027-02-01 (via the department eng)."
    )
    assigned = event(AuditEvent.Action.ASSIGNED, due_date="2027-03-01", was_self_enrolled=True)
    assert audit_sentence(assigned) == "Due 2027-03-01; they had enrolled themselves."
    assert audit_sentence(event(AuditEvent.Action.ASSIGNED, due_date=None)) == "Due with no date."


def test_the_transcript_shows_the_sentence_not_the_keys(client, hr, learner, course):
    AuditEvent.objects.create(
        actor=hr,
        action=AuditEvent.Action.REGRADED,
        learner=learner,
        course=course,
        detail={"from_score": 54.41, "to_score": 54.41, "from_passed": True, "to_passed": True},
    )
    client.force_login(hr)
    page = client.get(reverse("reports:transcript", args=[learner.pk])).content.decode()
    assert "Re-graded: unchanged, 54.4 (passed)." in page
    assert "from_score" not in page
