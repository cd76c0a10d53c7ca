"""The per-request path made cheaper for cached pages: the user lookup and the Redis cache.

Both replace a Django default with a faster equivalent, so each is held to the default's
behaviour: the same user object, the same refusals, the same cache semantics.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbSession
from django.urls import reverse

from academy.auth import AcademyModelBackend
from academy.cache import RedisCache
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
CATALOG = reverse("courses:catalog")


def test_the_backend_loads_the_same_user_as_djangos(learner):
    learner.first_name, learner.last_name, learner.email = "Lee", "Learner", "lee@example.com"
    learner.save()
    ours, django_s = AcademyModelBackend().get_user(learner.pk), ModelBackend().get_user(learner.pk)
    fields = [f.attname for f in learner._meta.concrete_fields]
    assert {f: getattr(ours, f) for f in fields} == {f: getattr(django_s, f) for f in fields}
    assert ours._state.adding is False and ours._state.db == "default"


@pytest.mark.parametrize("user_id", ["not-a-number", "", None, "999999999", "1; DROP TABLE x"])
def test_a_session_naming_no_real_user_is_anonymous(user_id):
    assert AcademyModelBackend().get_user(user_id) is None


def test_an_inactive_user_is_signed_out(client, learner):
    client.force_login(learner)
    assert client.get(CATALOG).status_code == 200
    learner.is_active = False
    learner.save()
    assert client.get(CATALOG).status_code == 302


def test_a_password_change_signs_out_the_users_other_sessions(client, learner):
    client.force_login(learner)
    assert client.get(CATALOG).status_code == 200
    learner.set_password("a-new-password-entirely")
    learner.save()
    response = client.get(CATALOG)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_signing_in_through_the_form_uses_this_backend(client):
    user = UserFactory(username="sam")
    user.set_password("sam-password-1")
    user.save()
    client.post(reverse("login"), {"username": "sam", "password": "sam-password-1"})
    assert client.session["_auth_user_backend"] == "academy.auth.AcademyModelBackend"
    assert client.get(CATALOG).status_code == 200


# --- the Redis cache ----------------------------------------------------------------------


@pytest.fixture
def redis_cache():
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (set CELERY_BROKER_URL=redis://...)")
    url = urlsplit(broker)
    cache = RedisCache(f"redis://{url.netloc}/14", {"KEY_PREFIX": "test-request-path"})
    yield cache
    cache.clear()


def test_the_redis_cache_keeps_djangos_semantics(redis_cache):
    redis_cache.set("a", {"page": b"x" * 40_000}, 30)
    assert redis_cache.get("a") == {"page": b"x" * 40_000}
    assert redis_cache.add("a", "other") is False
    redis_cache.set("n", 1)
    assert redis_cache.incr("n") == 2
    redis_cache.delete("a")
    assert redis_cache.get("a", "gone") == "gone"
    assert redis_cache.get_many(["n", "missing"]) == {"n": 2}


def test_the_redis_cache_reuses_one_client_safely_across_threads(redis_cache):
    client = redis_cache._cache.get_client()
    assert redis_cache._cache.get_client(write=True) is client
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                redis_cache.set(f"t{n}-{i}", i)
                assert redis_cache.get(f"t{n}-{i}") == i
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_sessions_in_the_redis_cache_end_with_sign_out(redis_cache, settings, client, learner):
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "academy.cache.RedisCache",
            "LOCATION": redis_cache._servers[0],
            "KEY_PREFIX": "test-request-path",
        },
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    client.force_login(learner)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert CachedDbSession(key).get("_auth_user_id") == str(learner.pk)
    assert client.get(CATALOG).status_code == 200
    client.post(reverse("logout"))
    assert CachedDbSession(key).get("_auth_user_id") is None
