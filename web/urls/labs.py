from __future__ import annotations

from django.urls import path

from web.views import labs as views

app_name = "labs"

urlpatterns = [
    path("labs/<slug:course_slug>/<slug:slug>/submit/", views.submit, name="submit"),
    path(
        "labs/<slug:course_slug>/<slug:slug>/takehome/<str:name>",
        views.takehome_download,
        name="takehome",
    ),
    path("labs/<slug:course_slug>/<slug:slug>/precheck/", views.precheck, name="precheck"),
    path("prechecks/<int:precheck_id>/", views.precheck_status, name="precheck-status"),
    path("labs/<slug:course_slug>/<slug:slug>/compare/", views.compare, name="compare"),
    path("runs/<int:submission_id>/", views.submission_detail, name="submission"),
    path("runs/<int:submission_id>/status/", views.run_status, name="run-status"),
    path("runs/<int:submission_id>/try/", views.try_model, name="try-model"),
    path("predictions/<int:prediction_id>/", views.prediction_status, name="prediction-status"),
    path("runs/<int:submission_id>/cancel/", views.cancel, name="cancel"),
    path("datasets/<slug:slug>/", views.dataset_detail, name="dataset"),
]
