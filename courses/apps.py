from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoursesConfig(AppConfig):
    name = "courses"
    verbose_name = _("Curriculum")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from academy.locale import remember_language_at_sign_in

        user_logged_in.connect(remember_language_at_sign_in, dispatch_uid="academy-language")
