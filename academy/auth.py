"""The model backend, with a cheaper lookup of the signed-in user on each request."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.http import HttpRequest

from academy.signin import password_sign_in_allowed


class AcademyModelBackend(ModelBackend):
    """Django's ModelBackend; only `get_user`, run on every signed-in request, differs.

    Building `User.objects.get(pk=...)` through the ORM costs ~200 µs, ten times the
    query itself, and is the largest part of serving a cached page (web/pagecache.py)
    or an htmx status poll. The same row is read with SQL written once; the checks
    (the user exists and may sign in) are ModelBackend's own.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        # Also here, not only in the sign-in forms: no door takes a password that is off.
        if username is not None and not password_sign_in_allowed(username):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(user_id)
        except Exception:  # a session naming no valid id is no user, as in ModelBackend
            return None
        user = next(iter(model._default_manager.raw(_user_sql(), [pk])), None)
        return user if user is not None and self.user_can_authenticate(user) else None


@cache
def _user_sql() -> str:
    meta = get_user_model()._meta
    quote = connection.ops.quote_name
    # Concrete fields always have a column; the stubs type it optional.
    columns = ", ".join(quote(str(field.column)) for field in meta.concrete_fields)
    return f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {quote(str(meta.pk.column))} = %s"  # noqa: S608
