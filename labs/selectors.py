"""Reads for datasets, labs and submissions, each applying who may see what."""

from __future__ import annotations

import datetime
from collections import Counter

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from labs.models import Dataset, Example, Lab, Submission

SAMPLE_ROWS = 12


def dataset_get(*, slug: str) -> Dataset:
    try:
        return Dataset.objects.get(slug=slug)
    except Dataset.DoesNotExist:
        raise Http404("No such dataset.") from None


def dataset_card(*, dataset: Dataset) -> dict:
    """What a learner may see of a dataset: sizes, the train label distribution, a sample.

    Held-out rows are counted but never returned.
    """
    train = Example.objects.filter(dataset=dataset, split=Example.Split.TRAIN)
    counts = Counter(dict(_label_counts(train)))
    heldout_size = Example.objects.filter(dataset=dataset, split=Example.Split.HELDOUT).count()
    sample = list(train.order_by("position").values_list("text", "label")[:SAMPLE_ROWS])
    return {
        "train_size": sum(counts.values()),
        "heldout_size": heldout_size,
        "label_counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        "sample": sample,
    }


def _label_counts(queryset: QuerySet[Example]) -> list[tuple[str, int]]:
    from django.db.models import Count

    return list(queryset.values("label").annotate(n=Count("id")).values_list("label", "n"))


def submission_get_for_learner(*, learner: AbstractBaseUser, submission_id: int) -> Submission:
    """A learner's own submission, else 404: ids reveal nothing about other people's runs."""
    try:
        return Submission.objects.select_related("lab__module__course").get(
            pk=submission_id, learner=learner
        )
    except Submission.DoesNotExist:
        raise Http404("No such submission.") from None


def submission_list_for_lab(*, learner: AbstractBaseUser, lab: Lab) -> QuerySet[Submission]:
    return (
        Submission.objects.filter(learner=learner, lab=lab, validation_of="")
        .select_related("grade")
        .order_by("-created_at")
    )


def submission_active(*, learner: AbstractBaseUser, lab: Lab) -> Submission | None:
    return (
        submission_list_for_lab(learner=learner, lab=lab)
        .filter(status__in=Submission.ACTIVE)
        .first()
    )


def queue_position(*, submission: Submission) -> int | None:
    """1-based place in its queue among runs waiting; None once it is not waiting."""
    if submission.status != Submission.Status.QUEUED:
        return None
    ahead = Submission.objects.filter(
        status=Submission.Status.QUEUED,
        lab__queue=submission.lab.queue,
        created_at__lt=submission.created_at,
    ).count()
    return ahead + 1


def attempts_window_start(now: datetime.datetime | None = None) -> datetime.datetime:
    """Attempts reset at local midnight."""
    now = timezone.localtime(now)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def attempts_used_today(*, learner: AbstractBaseUser, lab: Lab) -> int:
    """Runs that reached the learner's code today, plus runs still waiting to (they will)."""
    return (
        Submission.objects.filter(
            learner=learner, lab=lab, validation_of="", created_at__gte=attempts_window_start()
        )
        # Platform failures and runs stopped before the code started cost nothing.
        .filter(Q(status__in=Submission.ACTIVE) | Q(counts_as_attempt=True))
        .count()
    )


def attempts_reset_at() -> datetime.datetime:
    return attempts_window_start() + datetime.timedelta(days=1)


def stale_cutoff() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(seconds=settings.ACADEMY_STALE_RUN_SECONDS)
