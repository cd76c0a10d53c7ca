"""Reads for datasets, labs and submissions, each applying who may see what."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from academy.refusals import Refusal
from labs.models import Dataset, Example, Lab, Submission

# A learner's runs started within this window count against their place in the queue.
FAIRNESS_WINDOW = datetime.timedelta(hours=1)

SAMPLE_ROWS = 12


def dataset_get(*, slug: str) -> Dataset:
    try:
        return Dataset.objects.get(slug=slug)
    except Dataset.DoesNotExist:
        raise Http404("No such dataset.") from None


def heldout_rows(*, dataset: Dataset) -> list[tuple[str, str]]:
    """The held-out split as (text, label), in its order: for the grader and the serving
    stage, whose texts must line up one for one. Never for a page."""
    return list(
        Example.objects.filter(dataset=dataset, split=Example.Split.HELDOUT)
        .order_by("position", "pk")
        .values_list("text", "label")
    )


def dataset_card(*, dataset: Dataset) -> dict:
    """What a learner may see of a dataset: sizes, the train label distribution, a sample.

    Held-out rows are counted but never returned.
    """
    train = Example.objects.filter(dataset=dataset, split=Example.Split.TRAIN)
    counts = Counter(dict(_label_counts(train)))
    heldout_size = Example.objects.filter(dataset=dataset, split=Example.Split.HELDOUT).count()
    dev_size = Example.objects.filter(dataset=dataset, split=Example.Split.DEV).count()
    sample = list(train.order_by("position").values_list("text", "label")[:SAMPLE_ROWS])
    return {
        "train_size": sum(counts.values()),
        "heldout_size": heldout_size,
        "dev_size": dev_size,
        "label_counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        "sample": sample,
    }


def dataset_train_rows(
    *, dataset: Dataset, split: str = Example.Split.TRAIN
) -> list[tuple[str, str]]:
    """A public split (training, or the dataset's own dev rows) as (text, label) rows, in
    file order; never the held-out one."""
    if split == Example.Split.HELDOUT:
        raise ValueError("the held-out split is never handed out")
    rows = Example.objects.filter(dataset=dataset, split=split)
    return list(rows.order_by("position").values_list("text", "label"))


def _label_counts(queryset: QuerySet[Example]) -> list[tuple[str, int]]:
    from django.db.models import Count

    return list(queryset.values("label").annotate(n=Count("id")).values_list("label", "n"))


def lab_pass_floors(*, lab: Lab) -> list[dict[str, Any]]:
    """The lab's floors in a fixed order, as "every class's recall" ≥ required."""
    return [
        {"floor": floor.value, "label": floor.label, "required": lab.pass_floors[floor.value]}
        for floor in Lab.Floor
        if floor.value in lab.pass_floors
    ]


def submission_get_for_learner(*, learner: User, submission_id: int) -> Submission:
    """A learner's own submission, else 404: ids reveal nothing about other people's runs."""
    try:
        return Submission.objects.select_related("lab__module__course").get(
            pk=submission_id, learner=learner
        )
    except Submission.DoesNotExist:
        raise Http404("No such submission.") from None


def submission_list_for_lab(*, learner: User, lab: Lab) -> QuerySet[Submission]:
    return (
        Submission.objects.filter(learner=learner, lab=lab, validation_of="")
        .select_related("grade")
        .order_by("-created_at")
    )


# Runs one comparison page sets side by side: more lines than this on one chart is a tangle.
COMPARE_MAX_RUNS = 6


class ComparisonRefused(Refusal):
    """Runs that cannot be compared: too few, too many, not numbers, or not this learner's
    runs of this lab."""


def submissions_for_comparison(*, learner: User, lab: Lab, ids: Sequence[str]) -> list[Submission]:
    """The learner's own runs of `lab` named by `ids` (as a query string gives them), oldest
    first; ComparisonRefused with a sentence for the learner otherwise. Another learner's run
    and a run that does not exist are refused alike (404), so ids reveal nothing."""
    wanted: list[int] = []
    for raw in ids:
        value = raw.strip().lstrip("#")
        if not value.isdigit() or not 0 < int(value) < 2**31:
            shown = raw if len(raw) <= 20 else raw[:20] + "…"
            raise ComparisonRefused(f"“{shown}” is not a run number.")
        if int(value) not in wanted:
            wanted.append(int(value))
    if len(wanted) < 2:
        raise ComparisonRefused(
            "Pick at least two of your runs to compare: tick them in “Your attempts”."
        )
    if len(wanted) > COMPARE_MAX_RUNS:
        raise ComparisonRefused(
            f"Compare at most {COMPARE_MAX_RUNS} runs at a time ({len(wanted)} were picked)."
        )
    runs = {
        run.pk: run
        for run in Submission.objects.filter(
            pk__in=wanted, learner=learner, validation_of=""
        ).select_related("grade", "lab__module")
    }
    for pk in wanted:
        if pk not in runs:
            raise ComparisonRefused(f"Run #{pk} is not one of your runs.", status=404)
        if runs[pk].lab_id != lab.pk:
            raise ComparisonRefused(
                f"Run #{pk} is a run of another lab ({runs[pk].lab.module.title}): "
                "compare runs of one lab."
            )
    return sorted(runs.values(), key=lambda run: run.pk)


def submission_active(*, learner: User, lab: Lab) -> Submission | None:
    return (
        submission_list_for_lab(learner=learner, lab=lab)
        .filter(status__in=Submission.ACTIVE)
        .first()
    )


def submissions_fair_order(*, queues: Sequence[str], now: datetime.datetime | None = None):
    """Queued runs of these queues in the order workers take them.

    The learners with the fewest runs started within FAIRNESS_WINDOW first (one
    learner's burst of submissions cannot starve anyone else: each learner gets a
    run before anyone gets a second), then oldest first. A run requeued after a
    platform fault or a dead worker takes the place it had before it was claimed
    (its own start is not counted against it), never a place ahead of everyone.
    """
    since = (now or timezone.now()) - FAIRNESS_WINDOW
    started_recently = (
        Submission.objects.filter(learner=OuterRef("learner_id"), started_at__gte=since)
        .exclude(pk=OuterRef("pk"))
        .order_by()
        .values("learner_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Submission.objects.filter(status=Submission.Status.QUEUED, lab__queue__in=list(queues))
        .annotate(
            recent=Coalesce(Subquery(started_recently, output_field=IntegerField()), Value(0)),
        )
        .order_by("recent", "created_at", "pk")
    )


def queue_position(*, submission: Submission) -> int | None:
    """1-based place among the runs waiting in its queue, in the order workers will take
    them (None once it is not waiting). A learner's k-th waiting run counts as k more runs
    started: each claim adds one to that learner's count, so their runs interleave with
    everyone else's."""
    if submission.status != Submission.Status.QUEUED:
        return None
    rows = submissions_fair_order(queues=[submission.lab.queue]).values_list(
        "pk", "learner_id", "recent", "created_at"
    )
    seen: Counter[int] = Counter()
    keyed = []
    for pk, learner_id, recent, created_at in rows:
        keyed.append(((recent + seen[learner_id], created_at, pk), pk))
        seen[learner_id] += 1
    order = [pk for _, pk in sorted(keyed)]
    return order.index(submission.pk) + 1 if submission.pk in order else None


def attempts_window_start(now: datetime.datetime | None = None) -> datetime.datetime:
    """Attempts reset at local midnight."""
    now = timezone.localtime(now)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def attempts_used_today(*, learner: User, lab: Lab) -> int:
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
