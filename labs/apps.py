from __future__ import annotations

from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "labs"
    verbose_name = "Code labs"

    def ready(self) -> None:
        from courses.exporting import register_export_extension
        from courses.services import register_import_extension
        from labs.exporting import course_export_labs
        from labs.services.authoring import course_import_labs

        # Course folders carry datasets and `lab:` sections; courses must not import labs.
        register_import_extension(course_import_labs)
        register_export_extension(course_export_labs)
