"""The employee directory import: preview, apply, refusals, deactivation, enrollment, the HR page."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from courses.models import Department, EmployeeProfile, Enrollment
from grading.models import EmployeeImport, ModuleProgress
from grading.reports.directory import DirectoryRefused, directory_apply, directory_preview
from grading.reports.services import assignment_create
from tests.factories import DepartmentFactory, UserFactory

HEADER = "employee_id,name,email,department,manager_employee_id,active\n"
FILE = (
    HEADER
    + "E1,Ada Lovelace,ada@example.com,Engineering,,true\n"
    + "E2,Bob Brown,bob@example.com,Engineering,E1,yes\n"
    + "E3,Cleo Chan,Cleo@Example.com,Finance,E1,1\n"
)


def people() -> dict[str, tuple[str, str, str, str | None, bool]]:
    return {
        p.employee_id: (
            p.user.get_full_name(),
            p.user.email,
            p.department.name if p.department else "",
            p.manager.profile.employee_id if p.manager else None,
            p.user.is_active,
        )
        for p in EmployeeProfile.objects.select_related("user", "department", "manager__profile")
    }


def test_a_first_import_creates_people_departments_and_the_hierarchy(db):
    plan = directory_apply(FILE.encode())
    assert (len(plan.created), len(plan.updated), plan.departments_created) == (
        3,
        0,
        ["Engineering", "Finance"],
    )
    assert people() == {
        "E1": ("Ada Lovelace", "ada@example.com", "Engineering", None, True),
        "E2": ("Bob Brown", "bob@example.com", "Engineering", "E1", True),
        "E3": ("Cleo Chan", "cleo@example.com", "Finance", "E1", True),
    }
    ada = User.objects.get(profile__employee_id="E1")
    assert ada.username == "ada" and not ada.has_usable_password()


def test_the_same_file_again_changes_nothing_and_says_zero_changes(db):
    directory_apply(FILE.encode())
    before = list(User.objects.order_by("pk").values())
    plan = directory_apply(FILE.encode())
    assert plan.changes == 0 and plan.unchanged == 3
    assert plan.summary().startswith("0 changes")
    assert list(User.objects.order_by("pk").values()) == before
    assert Department.objects.count() == 2


def test_a_preview_lists_what_changes_and_writes_nothing(db):
    directory_apply(FILE.encode())
    changed = FILE.replace(
        "Bob Brown,bob@example.com,Engineering,E1", "Bob Black,bob@example.com,Sales,E3"
    )
    plan = directory_preview((changed + "E4,Dee Dee,dee@example.com,Sales,E1,true\n").encode())
    assert [p.employee_id for p in plan.created] == ["E4"]
    assert [(p.employee_id, diff) for p, diff in plan.updated] == [
        (
            "E2",
            {
                "name": ("Bob Brown", "Bob Black"),
                "department": ("Engineering", "Sales"),
                "manager": ("E1", "E3"),
            },
        )
    ]
    assert plan.departments_created == ["Sales"] and plan.unchanged == 2
    assert people()["E2"] == ("Bob Brown", "bob@example.com", "Engineering", "E1", True)
    assert not Department.objects.filter(name="Sales").exists()


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (",No Id,noid@example.com,X,,true", "row 5: missing employee id"),
        ("E1,Twice,twice@example.com,X,,true", "row 5 (E1): employee id E1 is also on row 2"),
        ("E9,Bad Mail,not-an-email,X,,true", "row 5 (E9): bad email 'not-an-email'"),
        (
            "E9,No Boss,nb@example.com,X,E404,true",
            "row 5 (E9): manager E404 is neither in the file",
        ),
        ("E9,Maybe,maybe@example.com,X,,perhaps", "row 5 (E9): active must be true or false"),
        ("E9,Self,self@example.com,X,E9,true", "row 5 (E9): is their own manager"),
    ],
)
def test_one_bad_row_imports_nothing_and_names_the_row(db, bad_row, message):
    with pytest.raises(DirectoryRefused) as refused:
        directory_apply((FILE + bad_row + "\n").encode())
    assert any(message in line for line in refused.value.errors), refused.value.errors
    assert not User.objects.exists() and not Department.objects.exists()


def test_a_manager_cycle_is_refused_with_its_chain(db):
    cycle = (
        HEADER
        + "A,A A,a@example.com,,C,true\nB,B B,b@example.com,,A,true\nC,C C,c@example.com,,B,true\n"
    )
    with pytest.raises(DirectoryRefused) as refused:
        directory_apply(cycle.encode())
    assert refused.value.errors == ["row 2 (A): manager cycle A → C → B → A"]
    assert not EmployeeProfile.objects.exists()


def test_a_cycle_through_someone_only_in_the_database_is_refused(db):
    directory_apply(FILE.encode())
    # E1 now reports to E2, who (in the database, not in this file) reports to E1.
    with pytest.raises(DirectoryRefused, match="manager cycle E1 → E2 → E1"):
        directory_apply((HEADER + "E1,Ada Lovelace,ada@example.com,Engineering,E2,true\n").encode())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,name\nE1,Ada\n", "row 1: the header must name the columns"),
        (
            (HEADER + "E1,Zo\xeb,z@example.com,,,true\n").encode("latin-1"),
            "row 2: the file is not UTF-8",
        ),
        (b"x" * (20 * 1024 * 1024 + 1), "larger than 20 MB"),
        (HEADER.encode(), "no rows"),
    ],
)
def test_a_bad_file_is_refused_whole(db, data, message):
    with pytest.raises(DirectoryRefused, match=message):
        directory_preview(data)


def test_marking_someone_inactive_deactivates_them_and_keeps_their_records(db, course):
    directory_apply(FILE.encode())
    bob = User.objects.get(profile__employee_id="E2")
    Enrollment.objects.create(learner=bob, course=course)
    ModuleProgress.objects.create(
        learner=bob, module=course.modules.first(), status="completed", completed_at=timezone.now()
    )
    plan = directory_apply(FILE.replace("E1,yes", "E1,false").encode())
    assert plan.deactivated == ["E2"] and plan.summary().startswith(
        "0 created, 0 updated, 1 deactivated"
    )
    bob.refresh_from_db()
    assert not bob.is_active
    assert Enrollment.objects.filter(learner=bob).count() == 1
    assert ModuleProgress.objects.filter(learner=bob).count() == 1


def test_new_members_of_an_assigned_department_are_enrolled_at_once(db, course, hr):
    due = timezone.localdate() + datetime.timedelta(days=10)
    engineering = DepartmentFactory(name="Engineering", slug="engineering")
    assignment_create(course=course, due_date=due, actor=hr, departments=[engineering])
    plan = directory_apply(FILE.encode())
    assert plan.enrolled == 2  # Ada and Bob; Cleo is in Finance
    enrolled = Enrollment.objects.filter(course=course).select_related("learner__profile")
    assert sorted((e.learner.profile.employee_id, e.due_date) for e in enrolled) == [
        ("E1", due),
        ("E2", due),
    ]
    # Someone created inactive is not enrolled.
    directory_apply((FILE + "E5,Gone Person,gone@example.com,Engineering,,false\n").encode())
    assert Enrollment.objects.filter(course=course).count() == 2


def test_an_account_without_a_profile_is_linked_by_email_not_duplicated(db):
    existing = UserFactory(username="ada-by-hand", email="ADA@example.com")
    directory_apply(FILE.encode())
    assert EmployeeProfile.objects.get(employee_id="E1").user == existing
    assert User.objects.filter(email__iexact="ada@example.com").count() == 1


def test_a_taken_username_gets_the_employee_id(db):
    UserFactory(username="bob", email="someone-else@example.com")
    directory_apply(FILE.encode())
    assert User.objects.get(profile__employee_id="E2").username == "bob-e2"


def test_an_email_of_another_employee_is_refused(db):
    directory_apply(FILE.encode())
    with pytest.raises(DirectoryRefused, match=r"email ada@example\.com belongs to employee E1"):
        directory_apply((HEADER + "E7,Ada Two,ada@example.com,,,true\n").encode())


def test_the_command_previews_then_applies(db, tmp_path, capsys):
    path = tmp_path / "directory.csv"
    path.write_text(FILE)
    call_command("import_employees", str(path))
    assert "Preview: 3 created" in capsys.readouterr().out
    assert not User.objects.exists()
    call_command("import_employees", str(path), "--apply")
    assert "Applied: 3 created" in capsys.readouterr().out
    call_command("import_employees", str(path), "--apply")
    assert "Applied: 0 changes" in capsys.readouterr().out
    path.write_text(FILE + "E9,No Boss,nb@example.com,X,E404,true\n")
    with pytest.raises(CommandError, match="row 5 \\(E9\\): manager E404"):
        call_command("import_employees", str(path), "--apply")


# --- The HR page


def upload(client, text: str, name: str = "directory.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("reports:employee-import"),
        {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")},
    )


def test_hr_previews_an_upload_and_confirms_exactly_that_file(client, hr):
    client.force_login(hr)
    response = upload(client, FILE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-count="created">3<' in html and "Apply these changes" in html
    assert not EmployeeProfile.objects.exists()
    stored = EmployeeImport.objects.get()
    response = client.post(
        reverse("reports:employee-import-confirm"), {"upload": stored.pk, "sha256": stored.sha256}
    )
    assert response.status_code == 302
    assert set(people()) == {"E1", "E2", "E3"}
    page = client.get(response["Location"]).content.decode()
    assert "Imported: 3 created" in page
    # The same confirmation twice does nothing more.
    response = client.post(
        reverse("reports:employee-import-confirm"), {"upload": stored.pk, "sha256": stored.sha256}
    )
    assert "imported already" in client.get(response["Location"]).content.decode()


def test_a_confirmation_with_another_hash_applies_nothing(client, hr):
    client.force_login(hr)
    upload(client, FILE)
    stored = EmployeeImport.objects.get()
    response = client.post(
        reverse("reports:employee-import-confirm"), {"upload": stored.pk, "sha256": "0" * 64}
    )
    assert response.status_code == 302 and not EmployeeProfile.objects.exists()


def test_a_confirmation_after_the_directory_changed_applies_nothing(client, hr):
    client.force_login(hr)
    upload(client, FILE)
    stored = EmployeeImport.objects.get()
    directory_apply((HEADER + "E3,Cleo Chan,cleo@example.com,Legal,,true\n").encode())
    response = client.post(
        reverse("reports:employee-import-confirm"), {"upload": stored.pk, "sha256": stored.sha256}
    )
    assert "changed since the preview" in client.get(response["Location"]).content.decode()
    assert set(people()) == {"E3"}


def test_a_bad_upload_shows_each_row_and_stores_nothing(client, hr):
    client.force_login(hr)
    response = upload(client, FILE + "E9,Bad Mail,not-an-email,X,,true\n")
    assert response.status_code == 400
    assert "row 5 (E9): bad email" in response.content.decode()
    assert not EmployeeImport.objects.exists() and not EmployeeProfile.objects.exists()


def test_someone_who_is_not_hr_gets_403(client, learner, instructor):
    for user in (learner, instructor):
        client.force_login(user)
        assert client.get(reverse("reports:employee-import")).status_code == 403
        assert upload(client, FILE).status_code == 403
        assert client.post(reverse("reports:employee-import-confirm"), {}).status_code == 403
    assert not EmployeeProfile.objects.exists()


def test_the_preview_groups_its_counts_by_thousands():
    from grading.reports.directory import DirectoryPlan

    assert DirectoryPlan(unchanged=50000).summary() == (
        "0 changes: all 50,000 people already match the file."
    )
    plan = DirectoryPlan(departments_created=["ops"], unchanged=1234)
    assert (
        plan.summary()
        == "0 created, 0 updated, 0 deactivated, 1 department created, 1,234 unchanged."
    )
