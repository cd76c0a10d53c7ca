from __future__ import annotations

import io

from django.contrib.auth.models import Group
from django.core.management import call_command

from courses.models import Course, Enrollment


def test_setup_creates_roles_course_and_demo_accounts_once(db, settings):
    settings.ACADEMY_DEMO_ACCOUNTS = True
    first = io.StringIO()
    call_command("setup_academy", stdout=first)
    assert "username: learner" in first.getvalue()
    assert set(Group.objects.values_list("name", flat=True)) == {"Instructor", "HR"}
    assert Course.objects.filter(slug="fine-tuning-at-work", is_published=True).exists()
    assert Enrollment.objects.filter(learner__username="learner", due_date__isnull=False).exists()

    # The demo organisation (for /reports/): departments, managers, assignments, progress.
    assert "Demo organisation" in first.getvalue()
    assert Enrollment.objects.filter(learner__username__startswith="demo").count() > 10
    enrollments = Enrollment.objects.count()

    second = io.StringIO()
    call_command("setup_academy", stdout=second)
    assert "password" not in second.getvalue()  # shown once only
    assert Enrollment.objects.count() == enrollments


def test_setup_makes_no_demo_accounts_in_production_mode(db, settings, django_user_model):
    settings.ACADEMY_DEMO_ACCOUNTS = False
    call_command("setup_academy", stdout=io.StringIO())
    assert not django_user_model.objects.exists()


def test_demo_password_signs_in(db, settings, client):
    from courses.services import demo_accounts_create, roles_sync

    roles_sync()
    accounts = {a.username: a.password for a in demo_accounts_create(course_slugs=[])}
    assert client.login(username="hr", password=accounts["hr"])
