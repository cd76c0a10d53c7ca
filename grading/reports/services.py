"""HR writes: assignments and due dates (with their audit trail), machine tokens, reminders.

Each function owns its transaction. Enrollment rows stay in `courses`; what only HR
needs (department assignments, audit events, sent reminders, tokens) lives in `grading`.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets
import smtplib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from courses.due_dates import due_soon_q, overdue_q
from courses.models import Course, Department, EmployeeProfile, Enrollment, LanguagePreference
from grading.models import ApiToken, AuditEvent, DepartmentAssignment, ReminderSent

logger = logging.getLogger(__name__)


@dataclass
class AssignmentReport:
    enrolled: int = 0
    due_dates_changed: int = 0
    unchanged: int = 0
    departments: list[str] = field(default_factory=list)

    def message(self, course: Course) -> str:
        parts = [
            _("“%(title)s”: %(count)d newly assigned")
            % {"title": course.title, "count": self.enrolled}
        ]
        if self.due_dates_changed:
            parts.append(_("%(count)d due date(s) moved") % {"count": self.due_dates_changed})
        if self.unchanged:
            parts.append(
                _("%(count)d already assigned with that due date") % {"count": self.unchanged}
            )
        if self.departments:
            parts.append(
                _("new members of %(departments)s will be enrolled too")
                % {"departments": ", ".join(self.departments)}
            )
        return _("%(parts)s.") % {"parts": _("; ").join(parts)}


def _iso(value: datetime.date | None) -> str | None:
    return value.isoformat() if value else None


def _enroll_many(
    report: AssignmentReport,
    *,
    course: Course,
    learner_ids: Iterable[int],
    due_date: datetime.date | None,
    actor: User | None,
    department: Department | None = None,
) -> None:
    """Enroll these learners (or move their due date); bulk, so a department costs a few queries."""
    learner_ids = set(learner_ids)
    ordered = sorted(learner_ids)
    existing: dict[int, Enrollment] = {}
    # In chunks: a department of 50,000 would pass SQLite's limit of bound parameters.
    for start in range(0, len(ordered), 10_000):
        chunk = ordered[start : start + 10_000]
        existing.update(
            (e.learner_id, e)
            for e in Enrollment.objects.filter(course=course, learner_id__in=chunk)
        )
    via = {"via_department": department.slug} if department else {}
    new = [
        Enrollment(learner_id=pk, course=course, assigned_by=actor, due_date=due_date)
        for pk in sorted(learner_ids - existing.keys())
    ]
    Enrollment.objects.bulk_create(new, ignore_conflicts=True)
    events = [
        AuditEvent(
            actor=actor,
            action=AuditEvent.Action.ASSIGNED,
            learner_id=e.learner_id,
            course=course,
            department=department,
            detail={"due_date": _iso(due_date), **via},
        )
        for e in new
    ]
    report.enrolled += len(new)
    changed = []
    for enrollment in existing.values():
        # A finished course keeps its record as it was; an assignment does not reopen it.
        if enrollment.completed_at is not None or (
            enrollment.due_date == due_date and enrollment.assigned_by_id is not None
        ):
            report.unchanged += 1
            continue
        if enrollment.due_date != due_date:
            events.append(
                AuditEvent(
                    actor=actor,
                    action=AuditEvent.Action.DUE_DATE_CHANGED,
                    learner_id=enrollment.learner_id,
                    course=course,
                    department=department,
                    detail={"from": _iso(enrollment.due_date), "to": _iso(due_date), **via},
                )
            )
            report.due_dates_changed += 1
        if enrollment.assigned_by_id is None:
            # Self-enrolled before: it is an assignment from now on.
            events.append(
                AuditEvent(
                    actor=actor,
                    action=AuditEvent.Action.ASSIGNED,
                    learner_id=enrollment.learner_id,
                    course=course,
                    department=department,
                    detail={"due_date": _iso(due_date), "was_self_enrolled": True, **via},
                )
            )
            if enrollment.due_date == due_date:
                report.enrolled += 1
        enrollment.due_date = due_date
        enrollment.assigned_by = enrollment.assigned_by or actor
        changed.append(enrollment)
    Enrollment.objects.bulk_update(changed, ["due_date", "assigned_by"])
    AuditEvent.objects.bulk_create(events)


@transaction.atomic
def assignment_create(
    *,
    course: Course,
    due_date: datetime.date | None,
    actor: User | None,
    learners: Iterable[User] = (),
    departments: Iterable[Department] = (),
) -> AssignmentReport:
    """Assign a course to people and/or whole departments with a due date.

    Idempotent: the same assignment again changes nothing. A department assignment is
    remembered, so people who join the department later are enrolled too.
    """
    report = AssignmentReport()
    learner_ids = {user.pk for user in learners}
    if learner_ids:
        _enroll_many(report, course=course, learner_ids=learner_ids, due_date=due_date, actor=actor)
    for department in departments:
        row, created = DepartmentAssignment.objects.select_for_update().get_or_create(
            department=department,
            course=course,
            defaults={"due_date": due_date, "assigned_by": actor},
        )
        if created or row.due_date != due_date:
            AuditEvent.objects.create(
                actor=actor,
                action=AuditEvent.Action.DEPARTMENT_ASSIGNED,
                course=course,
                department=department,
                detail={
                    "due_date": _iso(due_date),
                    **({} if created else {"from": _iso(row.due_date)}),
                },
            )
            row.due_date = due_date
            row.save(update_fields=["due_date"])
        members = EmployeeProfile.objects.filter(department=department).values_list(
            "user_id", flat=True
        )
        _enroll_many(
            report,
            course=course,
            learner_ids=members,
            due_date=due_date,
            actor=actor,
            department=department,
        )
        report.departments.append(department.name)
    return report


@transaction.atomic
def enrollment_set_due_date(
    *, enrollment: Enrollment, due_date: datetime.date | None, actor: User | None
) -> Enrollment:
    """Move one learner's due date, leaving an audit record of from → to."""
    locked = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    if locked.due_date != due_date:
        AuditEvent.objects.create(
            actor=actor,
            action=AuditEvent.Action.DUE_DATE_CHANGED,
            learner_id=locked.learner_id,
            course_id=locked.course_id,
            detail={"from": _iso(locked.due_date), "to": _iso(due_date)},
        )
        locked.due_date = due_date
        locked.save(update_fields=["due_date"])
    enrollment.due_date = due_date
    return enrollment


@transaction.atomic
def department_assignments_sync(*, user: User | None = None) -> int:
    """Enroll members who joined an assigned department after the assignment. Returns how many.

    Runs in the periodic job, after a profile is saved in the admin (for one user) and after a
    directory import (for everyone: one query per assignment, whatever the file's size).
    """
    total = 0
    assignments = DepartmentAssignment.objects.select_related("course", "department", "assigned_by")
    if user is not None:
        profile = EmployeeProfile.objects.filter(user=user).first()
        if profile is None or profile.department_id is None:
            return 0
        assignments = assignments.filter(department_id=profile.department_id)
    for assignment in assignments:
        # A deactivated person (a leaver in the directory) is not enrolled in anything new.
        members = EmployeeProfile.objects.filter(
            department=assignment.department, user__is_active=True
        ).exclude(user__enrollments__course=assignment.course)
        if user is not None:
            members = members.filter(user=user)
        missing = list(members.values_list("user_id", flat=True))
        if not missing:
            continue
        report = AssignmentReport()
        _enroll_many(
            report,
            course=assignment.course,
            learner_ids=missing,
            due_date=assignment.due_date,
            actor=assignment.assigned_by,
            department=assignment.department,
        )
        total += report.enrolled
    return total


# --------------------------------------------------------------------------
# Machine tokens


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; the secret is returned once and only its hash is stored."""
    secret = "acr_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:10], key_hash=token_hash(secret)
    )
    return token, secret


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_token_mark_used(*, token: ApiToken) -> None:
    """Record when a token was last used, so HR can see which ones are idle."""
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())


# --------------------------------------------------------------------------
# Reminders


@dataclass
class ReminderCounts:
    due_soon: int = 0
    overdue: int = 0
    manager_weekly: int = 0
    failed: int = 0  # sends the mail server refused: no record, so the next run retries


def _send_once(
    counts: ReminderCounts,
    *,
    key: str,
    reason: str,
    recipient: User,
    subject: str,
    body: str,
    enrollment: Enrollment | None = None,
) -> bool:
    """Send one email unless this key was sent before. The row and the send commit together:
    a failed send leaves no row (so the next run tries again) and a second run finds the row."""
    try:
        with transaction.atomic():
            ReminderSent.objects.create(
                key=key, reason=reason, recipient=recipient, enrollment=enrollment
            )
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    except IntegrityError:
        return False  # another run sent it a moment ago
    except (OSError, smtplib.SMTPException) as exc:
        # One unreachable mailbox or a mail-server hiccup must not stop the other reminders.
        logger.warning("Reminder %s not sent: %s", key, exc)
        counts.failed += 1
        return False
    return True


def _already_sent(keys: list[str]) -> set[str]:
    sent: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        sent.update(ReminderSent.objects.filter(key__in=chunk).values_list("key", flat=True))
    return sent


def _course_url(course: Course) -> str:
    return settings.ACADEMY_BASE_URL.rstrip("/") + reverse("courses:course", args=[course.slug])


def _languages_of(user_ids: list[int]) -> dict[int, str]:
    """Each person's saved interface language (one query): an e-mail is written in it."""
    offered = dict(settings.LANGUAGES)
    return {
        user_id: language
        for user_id, language in LanguagePreference.objects.filter(
            user_id__in=set(user_ids)
        ).values_list("user_id", "language")
        if language in offered
    }


def _due(enrollment: Enrollment) -> datetime.date:
    # The due-date windows select only enrollments that have a due date.
    if enrollment.due_date is None:
        raise ValueError(f"enrollment {enrollment.pk} has no due date to remind of")
    return enrollment.due_date


def reminders_send(*, today: datetime.date | None = None) -> ReminderCounts:
    """Email learners shortly before a due date and once it is overdue, and managers a weekly
    summary of their team's overdue items. Each email goes out once per reason (see ReminderSent).
    """
    today = today or timezone.localdate()
    counts = ReminderCounts()
    days = settings.ACADEMY_REMINDER_DAYS_BEFORE
    # Who can be reminded at all; which of them, and why, is the due-date rule's to say.
    reachable = (
        Enrollment.objects.filter(learner__is_active=True, course__is_published=True)
        .exclude(learner__email="")
        .select_related("learner", "course", "learner__profile__manager")
        .order_by("due_date", "pk")
    )
    due_soon = list(reachable.filter(due_soon_q(today, days=days)))
    overdue = list(reachable.filter(overdue_q(today)))
    languages = _languages_of(
        [e.learner_id for e in due_soon + overdue]
        + [
            manager_id
            for e in overdue
            if (manager_id := getattr(getattr(e.learner, "profile", None), "manager_id", None))
        ]
    )

    def language(user_id: int) -> str:
        return languages.get(user_id, settings.LANGUAGE_CODE)

    def key(reason: str, e: Enrollment) -> str:
        return f"{reason}:enrollment:{e.pk}:{_due(e).isoformat()}"

    sent = _already_sent(
        [key("due_soon", e) for e in due_soon] + [key("overdue", e) for e in overdue]
    )
    for e in due_soon:
        if key("due_soon", e) in sent:
            continue
        left = (_due(e) - today).days
        with translation.override(language(e.learner_id)):
            when = (
                _("today")
                if left == 0
                else ngettext("in %(days)d day", "in %(days)d days", left) % {"days": left}
            )
            facts = {
                "title": e.course.title,
                "name": e.learner.get_full_name() or e.learner.get_username(),
                "date": date_format(_due(e), _("d F Y")),
                "when": when,
                "url": _course_url(e.course),
            }
            subject = _("Reminder: “%(title)s” is due %(when)s") % facts
            body = (
                _(
                    "Hello %(name)s,\n\n“%(title)s” is due on %(date)s (%(when)s).\n"
                    "Continue here: %(url)s\n"
                )
                % facts
            )
        counts.due_soon += _send_once(
            counts,
            key=key("due_soon", e),
            reason=ReminderSent.Reason.DUE_SOON,
            recipient=e.learner,
            enrollment=e,
            subject=subject,
            body=body,
        )
    for e in overdue:
        if key("overdue", e) in sent:
            continue
        with translation.override(language(e.learner_id)):
            facts = {
                "title": e.course.title,
                "name": e.learner.get_full_name() or e.learner.get_username(),
                "date": date_format(_due(e), _("d F Y")),
                "url": _course_url(e.course),
            }
            subject = _("Overdue: “%(title)s” was due on %(date)s") % facts
            body = (
                _(
                    "Hello %(name)s,\n\n“%(title)s” was due on %(date)s and is not complete "
                    "yet.\nContinue here: %(url)s\n"
                )
                % facts
            )
        counts.overdue += _send_once(
            counts,
            key=key("overdue", e),
            reason=ReminderSent.Reason.OVERDUE,
            recipient=e.learner,
            enrollment=e,
            subject=subject,
            body=body,
        )

    # Managers: one summary per ISO week, listing every overdue item of their direct reports.
    year, week, _weekday = today.isocalendar()
    by_manager: dict[int, list[Enrollment]] = defaultdict(list)
    managers: dict[int, User] = {}
    for e in overdue:
        profile = getattr(e.learner, "profile", None)
        manager = profile.manager if profile else None
        if manager is not None and manager.is_active and manager.email:
            by_manager[manager.pk].append(e)
            managers[manager.pk] = manager
    week_keys = {pk: f"manager_weekly:user:{pk}:{year}-W{week:02d}" for pk in by_manager}
    sent = _already_sent(list(week_keys.values()))
    for pk, items in by_manager.items():
        if week_keys[pk] in sent:
            continue
        with translation.override(language(pk)):
            lines = [
                "- "
                + ngettext(
                    "%(name)s: “%(title)s”, due %(date)s (%(late)d day late)",
                    "%(name)s: “%(title)s”, due %(date)s (%(late)d days late)",
                    (today - _due(e)).days,
                )
                % {
                    "name": e.learner.get_full_name() or e.learner.get_username(),
                    "title": e.course.title,
                    "date": date_format(_due(e), "DATE_FORMAT"),
                    "late": (today - _due(e)).days,
                }
                for e in items
            ]
            subject = ngettext(
                "Your team: %(count)d overdue course",
                "Your team: %(count)d overdue courses",
                len(items),
            ) % {"count": len(items)}
            body = _("Overdue courses in your team this week:") + "\n\n" + "\n".join(lines) + "\n"
        counts.manager_weekly += _send_once(
            counts,
            key=week_keys[pk],
            reason=ReminderSent.Reason.MANAGER_WEEKLY,
            recipient=managers[pk],
            subject=subject,
            body=body,
        )
    logger.info("Reminders sent: %s", counts)
    return counts
