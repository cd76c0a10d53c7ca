"""Shared fixtures: fast hashing, persona users, a small course, the shipped course."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import LazySettings

from tests.factories import CourseFactory, ModuleFactory, StageFactory, UserFactory

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# refuses to run inside one unless told it is safe (it is: one thread, tests).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHIPPED_COURSE = (
    Path(__file__).resolve().parent.parent / "courses" / "content" / "fine-tuning-at-work"
)


@pytest.fixture(autouse=True)
def _test_settings(settings: LazySettings, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    # Templates resolve {% static %} without a collectstatic manifest, and the
    # live server speaks plain HTTP, so cookies cannot be Secure-only here.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def learner(db):
    return UserFactory(username="lee")


@pytest.fixture
def outsider(db):
    return UserFactory(username="olga")


@pytest.fixture
def instructor(db):
    from courses.services import INSTRUCTOR_GROUP, roles_sync

    roles_sync()
    user = UserFactory(username="irene", is_staff=True)
    user.groups.add(user.groups.model.objects.get(name=INSTRUCTOR_GROUP))
    return user


@pytest.fixture
def hr(db):
    from courses.services import HR_GROUP, roles_sync

    roles_sync()
    user = UserFactory(username="hana", is_staff=True)
    user.groups.add(user.groups.model.objects.get(name=HR_GROUP))
    return user


@pytest.fixture
def course(db):
    """Two stages: stage 1 has two required theory modules, an optional one and a lab."""
    course = CourseFactory(slug="demo-course", title="Demo course")
    first = StageFactory(course=course, slug="basics", title="Basics", position=1)
    second = StageFactory(course=course, slug="advanced", title="Advanced", position=2)
    ModuleFactory(course=course, stage=first, slug="intro", title="Intro", position=1)
    ModuleFactory(course=course, stage=first, slug="loss", title="Loss", position=2)
    ModuleFactory(
        course=course, stage=first, slug="extra", title="Extra", position=3, required=False
    )
    ModuleFactory(course=course, stage=second, slug="deeper", title="Deeper", position=1)
    ModuleFactory(course=course, stage=second, slug="lab", title="A lab", position=2, kind="lab")
    return course


@pytest.fixture
def shipped_course(db):
    from courses.services import course_import

    return course_import(path=SHIPPED_COURSE).course
