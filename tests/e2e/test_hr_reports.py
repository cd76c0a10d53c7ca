from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlparse

import pytest

from grading.reports.demo import demo_organisation_create
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def table_rows(page) -> list[tuple[str, str, str]]:
    return [
        (
            row.get_attribute("data-employee"),
            row.get_attribute("data-course"),
            row.locator("td").nth(2).inner_text(),
        )
        for row in page.locator("#learner-table tbody tr[data-employee]").all()
    ]


def test_demo_hr_filters_by_department_and_downloads_the_matching_csv(
    live_server, page, screenshot, shipped_course, demo_passwords, tmp_path
):
    password = demo_passwords["hr"]
    demo_organisation_create(course_slugs=[shipped_course.slug])

    sign_in(page, live_server, "hr", password)
    page.click("nav >> text=Reports")
    page.wait_for_selector("#department-chart")
    departments_before = int(page.get_attribute("#department-chart", "data-departments"))
    rows_before = table_rows(page)
    assigned_before = page.inner_text('[data-card="assigned"]')
    assert departments_before >= 4
    assert {department for _, _, department in rows_before} >= {"Engineering", "Customer Service"}
    screenshot("hr-01-report-all-departments")

    page.select_option("#id_department", "customer-service")
    # htmx swaps the report body and pushes the filter into the URL.
    page.wait_for_url("**department=customer-service**")
    page.wait_for_function(
        "document.querySelector('#department-chart').dataset.departments === '1'"
    )
    rows_after = table_rows(page)
    assert rows_after and len(rows_after) < len(rows_before)
    assert {department for _, _, department in rows_after} == {"Customer Service"}
    assert page.inner_text('[data-card="assigned"]') != assigned_before
    assert page.locator("#department-chart .dept-bar").count() == 1
    assert parse_qs(urlparse(page.url).query)["department"] == ["customer-service"]
    screenshot("hr-02-report-customer-service")

    with page.expect_download() as info:
        page.click("#export-csv")
    path = tmp_path / "report.csv"
    info.value.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    exported = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [(r["employee_id"], r["course"], r["department"]) for r in exported] == rows_after

    # The bookmarked URL opens the same report without htmx.
    page.goto(page.url)
    assert table_rows(page) == rows_after

    # A learner's printable record, from the table.
    page.click("#learner-table tbody tr[data-employee] td:nth-child(2) a >> nth=1")
    page.wait_for_selector("text=Learning record:")
    assert page.locator(".transcript table").count() >= 1
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    screenshot("hr-03-transcript-print")
