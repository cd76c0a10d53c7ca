"""The /reports/ page: filters, summary cards, charts, sorting, paging, htmx partial, bad input."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.grading.reports_support import build_org


@pytest.fixture
def org(course):
    return build_org(course)


URL = "/reports/"


@pytest.fixture
def hr_client(client, hr):
    client.force_login(hr)
    return client


def rows(response):
    return [(row.employee_id, row.course_slug, row.status) for row, _ in response.context["table"]]


def test_the_report_counts_every_status_from_progress_and_due_dates(hr_client, org):
    response = hr_client.get(URL)
    assert response.status_code == 200
    summary = response.context["summary"]
    assert (summary.assigned, summary.completed, summary.overdue, summary.in_progress) == (
        5,
        1,
        1,
        1,
    )
    assert summary.not_started == 2
    assert summary.completion_rate == 20
    assert summary.median_days == pytest.approx(10, abs=0.01)  # assigned 12 days ago, done 2 ago
    assert summary.average_lab_score == pytest.approx((88.0 + 41.5) / 2)
    by_employee = {
        row.employee_id: row
        for row, _ in response.context["table"]
        if row.course_slug == "demo-course"
    }
    assert by_employee["E-101"].progress == 100
    assert by_employee["E-102"].progress == 50
    assert by_employee["E-103"].status == "overdue"
    assert by_employee["E-104"].status == "not_started"


def test_the_page_shows_svg_charts_with_text_alternatives(hr_client, org):
    html = hr_client.get(URL).content.decode()
    assert '<svg class="chart bar-chart" id="department-chart"' in html
    assert '<desc id="department-chart-desc">Engineering 50% (1 of 2)' in html
    assert 'id="timeline-chart"' in html
    assert "Department figures as a table" in html and "Completions as a table" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"department": "finance"},
            {("E-103", "demo-course"), ("E-104", "demo-course"), ("E-104", "other-course")},
        ),
        ({"status": "overdue"}, {("E-103", "demo-course")}),
        ({"status": "in_progress"}, {("E-102", "demo-course")}),
        ({"status": "completed"}, {("E-101", "demo-course")}),
        ({"status": "not_started", "course": "demo-course"}, {("E-104", "demo-course")}),
        (
            {"manager": "maya"},
            {("E-101", "demo-course"), ("E-102", "demo-course"), ("E-103", "demo-course")},
        ),
        ({"course": "other-course"}, {("E-104", "other-course")}),
    ],
)
def test_each_filter_narrows_the_table(hr_client, org, params, expected):
    response = hr_client.get(URL, params)
    assert response.status_code == 200
    assert {(e, c) for e, c, _ in rows(response)} == expected


def test_the_date_range_applies_to_the_chosen_date(hr_client, org):
    from tests.grading.reports_support import TODAY

    yesterday = TODAY.replace() - __import__("datetime").timedelta(days=1)
    response = hr_client.get(URL, {"dates": "due", "date_to": yesterday.isoformat()})
    assert {e for e, _, _ in rows(response)} == {"E-103"}
    response = hr_client.get(
        URL,
        {
            "dates": "completed",
            "date_from": (TODAY - __import__("datetime").timedelta(days=5)).isoformat(),
        },
    )
    assert {e for e, _, _ in rows(response)} == {"E-101"}


def test_sorting_by_progress_descending_puts_the_finished_first(hr_client, org):
    response = hr_client.get(URL, {"course": "demo-course", "sort": "-progress"})
    assert [e for e, _, _ in rows(response)] == ["E-101", "E-102", "E-103", "E-104"]
    header = next(h for h in response.context["headers"] if h["key"] == "progress")
    assert header["sorted"] == "descending"
    assert "sort=progress" in header["href"]  # clicking again reverses


def test_the_table_pages_and_keeps_the_filters_in_its_links(hr_client, org, settings, monkeypatch):
    monkeypatch.setattr("grading.reports.views.PAGE_SIZE", 2)
    response = hr_client.get(URL, {"department": "engineering", "sort": "employee_id"})
    assert response.context["pages"] == 1
    response = hr_client.get(URL, {"sort": "employee_id", "page": "2"})
    assert [e for e, _, _ in rows(response)] == ["E-103", "E-104"]
    assert "sort=employee_id" in response.context["next_href"]
    assert "page=3" in response.context["next_href"]
    # Past the last page shows the last page, not an error.
    assert hr_client.get(URL, {"page": "99"}).context["page"] == 3


def test_htmx_gets_only_the_report_body_and_the_page_varies_on_it(hr_client, org):
    response = hr_client.get(URL, {"department": "finance"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="report-body"')
    assert "<h1>" not in html
    assert "HX-Request" in response["Vary"]
    assert 'href="/reports/export.csv?department=finance"' in html


def test_the_lab_columns_show_each_labs_best_score_for_one_course(hr_client, org):
    response = hr_client.get(URL, {"course": "demo-course", "sort": "employee_id"})
    assert [lab.slug for lab in response.context["labs"]] == ["lab"]
    scores = {row.employee_id: cells[0][1] for row, cells in response.context["table"]}
    assert scores == {"E-101": 88.0, "E-102": 41.5, "E-103": None, "E-104": None}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"course": "nope"}, "Unknown course “nope”"),
        ({"department": "x"}, "Unknown department “x”"),
        ({"manager": "lee"}, "“lee” is not anyone&#x27;s manager"),
        ({"status": "late"}, "Unknown status “late”"),
        ({"date_from": "31/12/2026"}, "Enter a date as YYYY-MM-DD"),
        (
            {"date_from": "2026-12-31", "date_to": "2026-01-01"},
            "The end date is before the start date",
        ),
        ({"sort": "password"}, "Cannot sort by “password”"),
        ({"page": "two"}, "The page must be a whole number"),
        ({"page": "0"}, "greater than or equal to 1"),
        ({"dates": "birthday"}, "dates apply to assigned, due or completed"),
    ],
)
def test_filter_values_that_do_not_parse_get_a_clear_message_not_a_500(
    hr_client, org, params, message
):
    response = hr_client.get(URL, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    htmx = hr_client.get(URL, params, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400 and message in htmx.content.decode()
    csv = hr_client.get(reverse("reports:export-csv"), params)
    assert csv.status_code == 400
    assert "Bad filter" in csv.content.decode()
    api = hr_client.get(reverse("reports:export-json"), params)
    assert api.status_code == 400 and "Bad filter" in api.json()["error"]


def test_the_transcript_lists_modules_scores_dates_and_the_audit_trail(hr_client, org, hr):
    from grading.reports.services import assignment_create

    assignment_create(course=org.course, due_date=None, actor=hr, learners=[org.started])
    html = hr_client.get(reverse("reports:transcript", args=[org.started.pk])).content.decode()
    assert "Learning record: Sam Started" in html
    assert "E-102" in html
    assert "41.5 / 100" in html  # the score to one decimal, as the exports carry it
    assert "Changed a due date" in html
    assert "data-print" in html and "js/print.js" in html
