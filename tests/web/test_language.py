"""The interface language: the browser's by default, the switcher's choice kept on the
account and applied on every device, in pages, cached pages, e-mails and run messages."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from courses.models import Enrollment, LanguagePreference
from courses.services import enrollment_create, language_preference_set
from grading.reports.services import reminders_send
from labs.models import Submission
from runs.sweep import submissions_requeue_stale
from tests.grading.reports_support import employee

ZH = "zh-hans"


def switch(client: Client, language: str, next_url: str = "/") -> object:
    return client.post(reverse("set_language"), {"language": language, "next": next_url})


def test_a_new_visitor_gets_english_and_the_page_says_so(client):
    page = client.get(reverse("login")).content.decode()
    assert '<html lang="en-gb">' in page
    assert "Sign in" in page and "登录" not in page


def test_a_browser_asking_for_chinese_gets_the_chinese_interface(client):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans">' in page
    assert "登录" in page and "Use your company account" not in page


def test_a_browser_asking_for_american_english_gets_the_english_interface(client):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="en-gb">' in page and "Sign in" in page


def test_the_header_offers_the_switcher_with_the_current_language_chosen(client, learner):
    client.force_login(learner)
    page = client.get(reverse("courses:catalog")).content.decode()
    assert f'action="{reverse("set_language")}"' in page
    assert '<option value="en-gb" lang="en-gb" selected>English</option>' in page
    assert '<option value="zh-hans" lang="zh-hans">简体中文</option>' in page


def test_a_learners_choice_is_saved_and_follows_them_to_another_device(learner):
    laptop = Client()
    laptop.force_login(learner)
    response = switch(laptop, ZH, reverse("courses:catalog"))
    assert response.status_code == 302 and response["Location"] == reverse("courses:catalog")
    assert LanguagePreference.objects.get(user=learner).language == ZH
    assert "<h1>课程</h1>" in laptop.get(reverse("courses:catalog")).content.decode()

    phone = Client(HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")  # a browser set to English
    phone.force_login(learner)  # signing in, as on any device
    page = phone.get(reverse("courses:catalog")).content.decode()
    assert '<html lang="zh-hans">' in page and "<h1>课程</h1>" in page


def test_switching_back_to_english_is_saved_too(client, learner):
    client.force_login(learner)
    switch(client, ZH)
    switch(client, "en-gb")
    assert LanguagePreference.objects.get(user=learner).language == "en-gb"
    assert "<h1>Courses</h1>" in client.get(reverse("courses:catalog")).content.decode()


def test_a_visitor_who_is_not_signed_in_can_switch_too_and_nothing_is_saved(client, db):
    switch(client, ZH)
    assert "登录" in client.get(reverse("login")).content.decode()
    assert not LanguagePreference.objects.exists()


@pytest.mark.parametrize("language", ["xx", "", "de", "zh-hans<script>"])
def test_an_unknown_language_is_refused_with_a_message_and_changes_nothing(
    client, learner, language
):
    client.force_login(learner)
    switch(client, ZH)
    response = switch(client, language)
    assert response.status_code == 400
    assert "is not a language of this site" in response.content.decode() or "本站不提供" in (
        response.content.decode()
    )
    # Echoed as plain text (never HTML), so a crafted code cannot become markup.
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert LanguagePreference.objects.get(user=learner).language == ZH


def test_the_switcher_answers_only_posts(client):
    assert client.get(reverse("set_language")).status_code == 405


def test_the_refusal_is_worded_in_the_current_language(client, learner):
    client.force_login(learner)
    switch(client, ZH)
    assert "本站不提供“xx”语言" in switch(client, "xx").content.decode()


def test_a_cached_page_is_never_served_in_the_other_language(client, learner, course):
    enrollment_create(learner=learner, course=course)
    client.force_login(learner)
    url = reverse("courses:course", args=[course.slug])
    client.get(url)  # a browser holds a CSRF cookie
    english = client.get(url)
    assert (
        english["X-Academy-Page-Cache"] in {"miss", "hit"} and "Stages" in english.content.decode()
    )
    switch(client, ZH, url)
    chinese = client.get(url)
    assert chinese["X-Academy-Page-Cache"] == "miss"
    assert "阶段" in chinese.content.decode() and ">Stages<" not in chinese.content.decode()


def test_dates_on_a_page_follow_the_language(client, learner, course):
    enrollment = enrollment_create(learner=learner, course=course)
    Enrollment.objects.filter(pk=enrollment.pk).update(due_date=datetime.date(2030, 1, 31))
    client.force_login(learner)
    url = reverse("courses:course", args=[course.slug])
    assert "31 Jan 2030" in client.get(url).content.decode()
    switch(client, ZH, url)
    assert "2030年1月31日" in client.get(url).content.decode()


def test_reminders_are_written_in_each_recipients_language(course):
    today = timezone.localdate()
    chinese = employee("wang", "T-8", None)
    english = employee("smith", "T-9", None)
    language_preference_set(user=chinese, language=ZH)
    for person in (chinese, english):
        Enrollment.objects.create(
            learner=person, course=course, due_date=today + datetime.timedelta(days=2)
        )
    reminders_send(today=today)
    by_recipient = {m.to[0]: m for m in mail.outbox}
    subject = f"提醒：“{course.title}”将于2 天后到期"  # noqa: RUF001  (Chinese punctuation)
    assert by_recipient[chinese.email].subject == subject
    assert "您好" in by_recipient[chinese.email].body
    assert by_recipient[english.email].subject == f"Reminder: “{course.title}” is due in 2 days"


def test_a_run_the_platform_gave_up_on_tells_the_learner_in_their_language(learner, lab):
    language_preference_set(user=learner, language=ZH)
    lost = Submission.objects.create(
        learner=learner,
        lab=lab,
        code="x",
        status="running",
        deliveries=3,
        heartbeat_at=timezone.now() - datetime.timedelta(minutes=5),
    )
    submissions_requeue_stale()
    lost.refresh_from_db()
    assert lost.status == "failed"
    assert (
        lost.error_message
        == "本次运行因工作节点故障被中断了 3 次。这不是你的问题，未消耗尝试次数。"  # noqa: RUF001
    )
