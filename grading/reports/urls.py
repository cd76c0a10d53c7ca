from __future__ import annotations

from django.urls import path

from grading.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.report, name="report"),
    path("export.csv", views.export_csv, name="export-csv"),
    path("export.json", views.export_json, name="export-json"),
    path("assign/", views.assign, name="assign"),
    path("employees/import/", views.employee_import, name="employee-import"),
    path(
        "employees/import/confirm/", views.employee_import_confirm, name="employee-import-confirm"
    ),
    path("learners/<int:learner_id>/", views.transcript, name="transcript"),
]
