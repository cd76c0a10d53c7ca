"""Finding 1: a course import silently replaced another course's dataset (keyed on slug only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from courses.authoring.source import CourseFolderError
from courses.models import Course
from labs.models import Dataset, Example, Lab, Submission
from labs.services.authoring import course_folder_import
from tests.factories import UserFactory
from tests.security.authoring_support import write_course

pytestmark = pytest.mark.django_db

OTHER_TRAIN = b"text,label\nhello there,ham\nbuy now,spam\nwin cash,scam\n"
OTHER_HELDOUT = b"text,label\nsee you,ham\n"


def test_finding_01_a_second_course_cannot_replace_another_courses_dataset(tmp_path: Path):
    course_folder_import(path=write_course(tmp_path / "a"))
    before = list(Example.objects.values_list("split", "text", "label"))
    labels = Dataset.objects.get(slug="shared-data").labels

    other = write_course(tmp_path / "b", slug="course-b", train=OTHER_TRAIN, heldout=OTHER_HELDOUT)
    with pytest.raises(CourseFolderError) as error:
        course_folder_import(path=other)

    assert error.value.path.endswith("shared-data/dataset.yaml")
    assert "already used by the labs of course(s) course-a" in error.value.message
    assert "give yours another slug" in error.value.message
    # All or nothing: course B is not half-imported, course A's rows and labels are intact.
    assert not Course.objects.filter(slug="course-b").exists()
    assert list(Example.objects.values_list("split", "text", "label")) == before
    assert Dataset.objects.get(slug="shared-data").labels == labels


def test_finding_01_the_owning_course_may_still_update_its_dataset(tmp_path: Path):
    root = write_course(tmp_path / "a")
    course_folder_import(path=root)
    train = (root / "datasets/shared-data/train.csv").read_bytes() + b"\nmore good news,good"
    (root / "datasets/shared-data/train.csv").write_bytes(train)

    report = course_folder_import(path=root)

    assert "dataset shared-data" in report.updated
    assert Example.objects.filter(text="more good news").exists()


def test_finding_01_labels_cannot_change_once_a_lab_has_graded_runs(tmp_path: Path):
    root = write_course(tmp_path / "a")
    course_folder_import(path=root)
    lab = Lab.objects.get()
    Submission.objects.create(
        learner=UserFactory.create(), lab=lab, code="x = 1\n", status=Submission.Status.GRADED
    )
    train = (root / "datasets/shared-data/train.csv").read_bytes() + b"\nneutral words,neutral"
    (root / "datasets/shared-data/train.csv").write_bytes(train)

    with pytest.raises(CourseFolderError) as error:
        course_folder_import(path=root)

    assert "the labels would change from bad, good, meh to bad, good, meh, neutral" in str(
        error.value
    )
    assert "course-a-lab have graded runs" in error.value.message
    assert Dataset.objects.get(slug="shared-data").labels == ["bad", "good", "meh"]
