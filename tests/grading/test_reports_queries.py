"""The report page and the exports run a fixed number of queries, whatever the data's size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import UserFactory
from tests.grading.reports_support import build_org, employee, enroll


@pytest.fixture
def org(course):
    return build_org(course)


# session + user, the user's groups, 3 filter option lists, counts, median, lab average,
# lab columns, the page's ids, its rows, the department chart, the timeline, and the user's
# permissions (two, for the navigation links).
REPORT_PAGE_QUERIES = 16
# session, user, groups, 3 option lists (they validate the filters), lab columns, the rows.
CSV_QUERIES = 8


def grow(org, course, n: int) -> None:
    for i in range(n):
        person = employee(
            f"extra{i}", f"X-{i:04d}", org.engineering if i % 2 else org.finance, org.manager
        )
        enroll(person, course, due=(i % 7) - 3)
    UserFactory()  # and someone with no profile at all


@pytest.mark.parametrize("extra", [0, 60])
def test_the_report_page_runs_a_constant_number_of_queries(
    client, hr, org, course, extra, django_assert_num_queries
):
    grow(org, course, extra)
    client.force_login(hr)
    with django_assert_num_queries(REPORT_PAGE_QUERIES):
        response = client.get(reverse("reports:report"), {"sort": "-progress"})
    assert response.status_code == 200


@pytest.mark.parametrize("extra", [0, 60])
def test_the_csv_export_runs_a_constant_number_of_queries(client, hr, org, course, extra):
    grow(org, course, extra)
    client.force_login(hr)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("reports:export-csv"))
        body = b"".join(response.streaming_content)  # the rows are read while streaming
    assert body.count(b"\r\n") == 1 + 5 + extra
    assert len(queries) == CSV_QUERIES, "\n".join(q["sql"][:120] for q in queries.captured_queries)
