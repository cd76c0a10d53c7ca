from __future__ import annotations

import io

from django.urls import reverse

from grading.models import CourseStaff
from labs.models import Dataset, Submission


def upload(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_instructor_uploads_a_dataset_as_csv(client, instructor):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:labs_dataset_add"),
        {
            "slug": "pets",
            "title": "Pets",
            "description": "",
            "license_name": "CC0",
            "source_markdown": "Made up.",
            "train_csv": upload("train.csv", b"text,label\ncat,a\ndog,b\n"),
            "heldout_csv": upload("test.csv", b"text,label\nkitten,a\n"),
        },
        follow=True,
    )
    assert "Dataset pets created: 2 train, 1 held-out rows, 2 labels." in response.content.decode()
    assert Dataset.objects.get(slug="pets").examples.count() == 3


def test_a_bad_csv_upload_says_what_is_wrong_and_saves_nothing(client, instructor):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:labs_dataset_add"),
        {
            "slug": "pets",
            "title": "Pets",
            "description": "",
            "license_name": "CC0",
            "source_markdown": "x",
            "train_csv": upload("train.csv", b"text,label\ncat,a\ndog,b\n"),
            "heldout_csv": upload("test.csv", b"text,label\nhamster,c\n"),
        },
    )
    assert "label(s) never seen in train.csv: c" in response.content.decode()
    assert not Dataset.objects.filter(slug="pets").exists()


def test_lab_form_refuses_a_target_not_above_the_baseline(client, instructor, lab):
    client.force_login(instructor)
    url = reverse("admin:labs_lab_change", args=[lab.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        baseline=0.8,
        target=0.8,
        module=lab.module_id,
        dataset=lab.dataset_id,
        required_hooks='["preprocess"]',
    )
    response = client.post(url, data)
    assert "The target must be above the baseline." in response.content.decode()


def lab_form_data(client, lab, **changes):
    page = client.get(reverse("admin:labs_lab_change", args=[lab.pk]))
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        module=lab.module_id,
        dataset=lab.dataset_id,
        required_hooks='["preprocess"]',
        pass_floors="{}",
    )
    return {**data, **changes}


def test_weight_rules_and_floors_are_edited_in_the_lab_form(client, instructor, lab):
    client.force_login(instructor)
    url = reverse("admin:labs_lab_change", args=[lab.pk])
    rules = '{"may_change": ["classifier.*"], "low_rank": ["*.query.weight"], "max_rank": 8}'
    response = client.post(
        url, lab_form_data(client, lab, checkpoint_rules=rules, pass_floors='{"macro_f1": 0.5}')
    )
    assert response.status_code == 302, response.content.decode()
    lab.refresh_from_db()
    assert lab.checkpoint_rules["max_rank"] == 8 and lab.pass_floors == {"macro_f1": 0.5}

    response = client.post(url, lab_form_data(client, lab, checkpoint_rules="", pass_floors="{}"))
    assert response.status_code == 302
    lab.refresh_from_db()
    assert lab.checkpoint_rules is None and lab.pass_floors == {}  # blank: no rules


def test_lab_form_refuses_weight_rules_the_schema_refuses(client, instructor, lab):
    client.force_login(instructor)
    url = reverse("admin:labs_lab_change", args=[lab.pk])
    data = lab_form_data(client, lab, checkpoint_rules='{"low_rank": ["*.query.weight"]}')
    page = client.post(url, data).content.decode()
    assert "low_rank needs max_rank, the highest rank a change may have" in page
    lab.refresh_from_db()
    assert lab.checkpoint_rules is None


def test_validate_action_queues_the_reference_and_the_starter(
    client, instructor, lab, django_capture_on_commit_callbacks
):
    client.force_login(instructor)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(
            reverse("admin:labs_lab_changelist"),
            {"action": "validate", "_selected_action": [lab.pk]},
        )
    runs = Submission.objects.filter(lab=lab).order_by("validation_of")
    assert [r.validation_of for r in runs] == ["reference", "starter"]
    assert len(callbacks) == 2


def test_submissions_are_read_only_in_the_admin(client, instructor, learner, lab):
    submission = Submission.objects.create(learner=learner, lab=lab, code="x = 1")
    CourseStaff.objects.create(course=lab.module.course, user=instructor)  # sees its runs
    client.force_login(instructor)
    assert (
        client.get(
            reverse("admin:labs_submission_changelist") + "?status__exact=queued"
        ).status_code
        == 200
    )
    assert (
        client.get(reverse("admin:labs_submission_change", args=[submission.pk])).status_code == 200
    )
    client.post(reverse("admin:labs_submission_change", args=[submission.pk]), {"code": "hacked"})
    submission.refresh_from_db()
    assert submission.code == "x = 1"


def test_regrade_action_sends_the_regrade_task_by_name_for_graded_runs_only(
    client, instructor, learner, lab
):
    from academy.celery import app

    CourseStaff.objects.create(course=lab.module.course, user=instructor)  # sees its runs
    graded = Submission.objects.create(learner=learner, lab=lab, code="x = 1", status="graded")
    failed = Submission.objects.create(learner=learner, lab=lab, code="x = 2", status="failed")
    app.control.purge()  # only this test's messages
    client.force_login(instructor)
    response = client.post(
        reverse("admin:labs_submission_changelist"),
        {"action": "regrade", "_selected_action": [graded.pk, failed.pk]},
        follow=True,
    )
    assert "Queued 1 re-grade(s). 1 not graded, skipped." in response.content.decode()
    # Read back from the broker itself: labs names the task, runs (above it) registers it.
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(app.conf.task_default_queue)
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    args, _kwargs, _embed = message.decode()
    assert message.headers["task"] == "grading.tasks.regrade_submission"
    assert args == [graded.pk, instructor.pk]
