"""CSV and JSON exports: exactly the filtered rows, streamed, BOM, stable columns, inert cells."""

from __future__ import annotations

import csv
import io

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from grading.reports.exports import FIXED_COLUMNS, neutralise
from tests.grading.reports_support import build_org, employee, enroll


@pytest.fixture
def org(course):
    return build_org(course)


@pytest.fixture
def hr_client(client, hr):
    client.force_login(hr)
    return client


def read_csv(response) -> tuple[bytes, list[dict[str, str]]]:
    assert isinstance(response, StreamingHttpResponse)
    raw = b"".join(response.streaming_content)
    return raw, list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_the_csv_starts_with_a_bom_and_has_the_documented_columns(hr_client, org):
    response = hr_client.get(reverse("reports:export-csv"), {"course": "demo-course"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="academy-report-')
    raw, rows = read_csv(response)
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8-sig").splitlines()[0].split(",")
    assert header == [*FIXED_COLUMNS, "lab:demo-course/lab"]
    by_id = {r["employee_id"]: r for r in rows}
    assert by_id["E-101"]["status"] == "completed"
    assert by_id["E-101"]["progress_percent"] == "100"
    assert by_id["E-101"]["lab:demo-course/lab"] == "88.0"
    assert by_id["E-102"]["modules_completed"] == "2" and by_id["E-102"]["modules_required"] == "4"
    assert by_id["E-103"]["status"] == "overdue"
    assert by_id["E-103"]["manager"] == "Maya Boss"
    assert by_id["E-104"]["lab:demo-course/lab"] == ""


def test_the_csv_holds_exactly_what_the_filters_show_in_the_same_order(hr_client, org):
    params = {"department": "finance", "sort": "-employee_id"}
    page = hr_client.get(reverse("reports:report"), params)
    table = [(row.employee_id, row.course_slug) for row, _ in page.context["table"]]
    _, rows = read_csv(hr_client.get(reverse("reports:export-csv"), params))
    assert [(r["employee_id"], r["course"]) for r in rows] == table


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(hr_client, org, course):
    attacker = employee(
        "mallory", '=HYPERLINK("http://x")', org.finance, first_name="+cmd", last_name="@SUM(A1)"
    )
    enroll(attacker, course, due=5)
    _, rows = read_csv(hr_client.get(reverse("reports:export-csv"), {"department": "finance"}))
    row = next(r for r in rows if r["username"] == "mallory")
    assert row["employee_id"] == '\'=HYPERLINK("http://x")'
    assert row["name"] == "'+cmd @SUM(A1)"
    assert (
        neutralise("-2+3") == "'-2+3" and neutralise("\tx") == "'\tx" and neutralise("ok") == "ok"
    )


def test_names_with_accents_survive_the_round_trip(hr_client, org, course):
    person = employee("zoe", "E-200", org.finance, first_name="Zoë", last_name="Ørsted")
    enroll(person, course, due=5)
    _, rows = read_csv(hr_client.get(reverse("reports:export-csv"), {"department": "finance"}))
    assert "Zoë Ørsted" in {r["name"] for r in rows}


def test_the_json_export_carries_the_same_rows_and_columns(hr_client, org):
    response = hr_client.get(
        reverse("reports:export-json"), {"course": "demo-course", "sort": "employee_id"}
    )
    import json

    data = json.loads(b"".join(response.streaming_content))
    assert data["columns"] == [*FIXED_COLUMNS, "lab:demo-course/lab"]
    assert [r["employee_id"] for r in data["rows"]] == ["E-101", "E-102", "E-103", "E-104"]
    assert data["rows"][0]["lab_scores"] == {"demo-course/lab": 88.0}
    assert data["rows"][2]["due_on"] is not None and data["rows"][2]["status"] == "overdue"
    assert data["meta"]["filters"] == {"course": "demo-course", "sort": "employee_id"}


def test_the_csv_and_the_json_round_a_lab_score_the_same_way(hr_client, org):
    import json

    from grading.models import ModuleProgress

    ModuleProgress.objects.filter(best_score=88.0).update(best_score=54.414931801866466)
    query = {"course": "demo-course", "sort": "employee_id"}
    _, rows = read_csv(hr_client.get(reverse("reports:export-csv"), query))
    response = hr_client.get(reverse("reports:export-json"), query)
    assert response["Content-Disposition"].startswith('attachment; filename="academy-report-')
    data = json.loads(b"".join(response.streaming_content))
    assert rows[0]["lab:demo-course/lab"] == "54.4"
    assert data["rows"][0]["lab_scores"] == {"demo-course/lab": 54.4}


def test_the_report_offers_the_json_as_a_download(hr_client, org):
    page = hr_client.get(reverse("reports:report")).content.decode()
    assert ">JSON (download)</a>" in page and 'id="export-json"' in page
