"""Finding 12, the smaller ones: a query-string token echoed into `next=`, HR pages cacheable,
an unpublished course on a learner's transcript, uploads read before their size was checked,
a formula guard that missed leading whitespace, invisible characters and full-width signs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from courses.models import Enrollment
from grading.models import AuditEvent
from grading.reports.exports import neutralise
from labs.admin import CourseUploadForm, DatasetForm
from labs.datasets import MAX_CSV_BYTES
from tests.factories import CourseFactory, ModuleFactory, StageFactory

pytestmark = pytest.mark.django_db


def test_finding_12_a_token_in_the_exports_query_is_not_echoed_into_next(client):
    response = client.get(reverse("reports:export-csv") + "?token=s3cret-token&course=demo")
    assert response.status_code == 302
    assert "s3cret" not in response["Location"]
    assert "course%3Ddemo" in response["Location"]  # the filters survive the sign-in


@pytest.mark.parametrize(
    "name", ["reports:report", "reports:export-csv", "reports:export-json", "reports:assign"]
)
def test_finding_12_hr_pages_and_exports_are_never_stored(client, hr, name):
    client.force_login(hr)
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_finding_12_the_transcript_is_never_stored(client, learner):
    client.force_login(learner)
    response = client.get(reverse("reports:transcript", args=[learner.pk]))
    assert "no-store" in response["Cache-Control"]


def test_finding_12_a_learners_transcript_leaves_out_unpublished_courses(client, learner, hr):
    draft = CourseFactory(slug="draft", title="Secret draft course", is_published=False)
    stage = StageFactory(course=draft, slug="s", title="S", position=1)
    ModuleFactory(course=draft, stage=stage, slug="m", title="Unannounced module", position=1)
    Enrollment.objects.create(learner=learner, course=draft)
    # Its audit trail names the course too: left out with it.
    AuditEvent.objects.create(
        actor=hr, action=AuditEvent.Action.ASSIGNED, learner=learner, course=draft
    )
    url = reverse("reports:transcript", args=[learner.pk])

    client.force_login(learner)
    own = client.get(url).content.decode()
    assert "Secret draft course" not in own and "Unannounced module" not in own

    client.force_login(hr)
    assert "Secret draft course" in client.get(url).content.decode()  # HR: unchanged


class NotToBeRead(SimpleUploadedFile):
    """An upload that declares its size and fails the test if anything reads it."""

    def __init__(self, name: str, size: int) -> None:
        super().__init__(name, b"")
        self.size = size

    def read(self, *args: object) -> bytes:
        raise AssertionError("the upload was read before its size was checked")


def test_finding_12_a_dataset_upload_is_refused_by_size_before_it_is_read():
    big = MAX_CSV_BYTES + 1
    form = DatasetForm(
        data={"slug": "big", "title": "Big", "license_name": "CC0", "source_markdown": "x"},
        files={"train_csv": NotToBeRead("train.csv", big), "heldout_csv": NotToBeRead("t.csv", 1)},
    )
    assert not form.is_valid()
    assert "train.csv: larger than 50 MB" in str(form.errors)


def test_finding_12_a_course_zip_is_refused_by_size_before_it_is_read():
    form = CourseUploadForm(data={}, files={"archive": NotToBeRead("c.zip", 300 * 1024 * 1024)})
    assert not form.is_valid()
    assert "c.zip: larger than 200 MB" in str(form.errors)


@pytest.mark.parametrize(
    "cell",
    [
        " =1+1",
        "\t=1+1",
        "\u200b=1+1",
        "\ufeff+1",
        "\u00a0@SUM(A1)",
        "\uff1d1+1",
        "\uff0b1",
        "\uff0d1",
        "\ufe661+1",
    ],
)
def test_finding_12_the_formula_guard_sees_past_spaces_invisibles_and_full_width(cell):
    assert neutralise(cell) == "'" + cell


def test_finding_12_plain_text_cells_are_left_alone():
    assert neutralise("Ada Lovelace") == "Ada Lovelace"
    assert neutralise("  ") == "  "
