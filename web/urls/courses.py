from __future__ import annotations

from django.urls import path

from web.views import courses as views

app_name = "courses"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("my/", views.my_learning, name="my-learning"),
    path("courses/<slug:slug>/", views.course_detail, name="course"),
    path("courses/<slug:slug>/enroll/", views.course_enroll, name="enroll"),
    path("courses/<slug:course_slug>/<slug:slug>/", views.module_detail, name="module"),
    path(
        "courses/<slug:course_slug>/<slug:slug>/preview/",
        views.module_preview,
        name="module-preview",
    ),
    path(
        "courses/<slug:course_slug>/<slug:slug>/complete/",
        views.module_complete,
        name="module-complete",
    ),
    path("courses/<slug:course_slug>/<slug:slug>/check/", views.module_check, name="module-check"),
]
