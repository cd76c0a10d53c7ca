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
from django.utils.translation import gettext as _

from academy.refusals import Refusal
from labs.models import Dataset, Example, Lab, Precheck, Prediction, Submission

# A learner's runs started within this window count against their place in the queue.
FAIRNESS_WINDOW = datetime.timedelta(hours=1)

SAMPLE_ROWS = 12
# At most this many rows of one class in the sample.
SAMPLE_PER_LABEL = 4


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
    sample = _stratified_sample(train, counts)
    return {
        "train_size": sum(counts.values()),
        "heldout_size": heldout_size,
        "dev_size": dev_size,
        "label_counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        "sample": sample,
    }


def _stratified_sample(train: QuerySet[Example], counts: Counter[str]) -> list[tuple[str, str]]:
    """About SAMPLE_ROWS training rows, a few of each class (the largest classes first where
    there are more classes than rows), spread over each class's rows and the classes
    interleaved: a file sorted by label or by text no longer shows one class only."""
    labels = [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    per_label = max(1, min(SAMPLE_PER_LABEL, SAMPLE_ROWS // max(1, len(labels))))
    labels = labels[: SAMPLE_ROWS // per_label]
    picks: dict[str, list[tuple[str, str]]] = {}
    for label in labels:
        rows = train.filter(label=label).order_by("position").values_list("text", "label")
        n, k = counts[label], min(per_label, counts[label])
        # The middle row of each of k equal stretches of the class: deterministic, spread.
        picks[label] = [rows[(2 * i + 1) * n // (2 * k)] for i in range(k)]
    return [picks[label][i] for i in range(per_label) for label in labels if i < len(picks[label])]


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


def submission_best_for_lab(*, learner: User, lab: Lab) -> Submission | None:
    """The learner's best-scoring graded run of this lab (the earliest of equal scores)."""
    return (
        submission_list_for_lab(learner=learner, lab=lab)
        .filter(grade__isnull=False)
        .order_by("-grade__score", "created_at")
        .first()
    )


VERDICT_WRONG = "WRONG"


def validation_verdict(validation_of: str, *, passed: bool) -> str:
    """A validation run's outcome against its duty: a lab's reference must pass, its starter
    and every ablation must not."""
    if passed != (validation_of == "reference"):
        return VERDICT_WRONG
    return "passes as it should" if passed else "fails as it should"


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
            raise ComparisonRefused(_("“%(shown)s” is not a run number.") % {"shown": shown})
        if int(value) not in wanted:
            wanted.append(int(value))
    if len(wanted) < 2:
        raise ComparisonRefused(
            _("Pick at least two of your runs to compare: tick them in “Your attempts”.")
        )
    if len(wanted) > COMPARE_MAX_RUNS:
        raise ComparisonRefused(
            _("Compare at most %(most)s runs at a time (%(picked)s were picked).")
            % {"most": COMPARE_MAX_RUNS, "picked": len(wanted)}
        )
    runs = {
        run.pk: run
        for run in Submission.objects.filter(
            pk__in=wanted, learner=learner, validation_of=""
        ).select_related("grade", "lab__module")
    }
    for pk in wanted:
        if pk not in runs:
            raise ComparisonRefused(
                _("Run #%(pk)s is not one of your runs.") % {"pk": pk}, status=404
            )
        if runs[pk].lab_id != lab.pk:
            raise ComparisonRefused(
                _("Run #%(pk)s is a run of another lab (%(lab)s): compare runs of one lab.")
                % {"pk": pk, "lab": runs[pk].lab.module.title}
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


def precheck_latest(*, learner: User, lab: Lab) -> Precheck | None:
    return Precheck.objects.filter(learner=learner, lab=lab).order_by("-created_at").first()


def precheck_get_for_learner(*, learner: User, precheck_id: int) -> Precheck:
    """A learner's own precheck, else 404."""
    try:
        return Precheck.objects.select_related("lab__module__course").get(
            pk=precheck_id, learner=learner
        )
    except Precheck.DoesNotExist:
        raise Http404("No such precheck.") from None


def prediction_get_for_learner(*, learner: User, prediction_id: int) -> Prediction:
    """A learner's own prediction request, else 404."""
    try:
        return Prediction.objects.select_related("submission__lab__dataset").get(
            pk=prediction_id, learner=learner
        )
    except Prediction.DoesNotExist:
        raise Http404("No such prediction.") from None
