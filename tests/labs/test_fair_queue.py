"""Fair queueing across learners, in real SQL: who a worker's wake-up runs next."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from labs.models import Lab, Submission
from labs.selectors import queue_position, submissions_fair_order
from labs.services.submissions import submission_create
from runs.pipeline import submission_claim_next, submission_run
from runs.sweep import submissions_requeue_stale
from tests.conftest import TINY_SOLUTION
from tests.factories import ModuleFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def labs(lab) -> list[Lab]:
    """Four labs on the same dataset: a learner may have one active run per lab."""
    copies = [lab]
    for n in range(3):
        module = ModuleFactory(
            course=lab.module.course, stage=lab.module.stage, slug=f"lab-{n}", kind="lab"
        )
        copies.append(
            Lab.objects.create(
                module=module,
                dataset=lab.dataset,
                base_model=lab.base_model,
                starter_code="HYPERPARAMETERS = {}\n",
                reference_solution=TINY_SOLUTION,
                baseline=0.3,
                target=0.9,
                attempts_per_day=5,
            )
        )
    return copies


def queue_burst(learners, labs) -> None:
    """Each learner queues one run per lab, one learner after the other (FIFO's worst case)."""
    for learner in learners:
        for lab in labs:
            submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)


def claim_all(queues=("cpu",)) -> list[str]:
    order = []
    while (claimed := submission_claim_next(queues=list(queues), worker="w")) is not None:
        order.append(claimed.learner.username)
    return order


def test_each_learner_gets_a_run_before_anyone_gets_a_second(labs):
    learners = [UserFactory(username=name) for name in ("ann", "bob", "cat")]
    queue_burst(learners, labs)  # ann's four runs are the oldest

    assert claim_all() == ["ann", "bob", "cat"] * 4


def test_the_queue_position_a_learner_sees_is_the_order_workers_take(labs):
    learners = [UserFactory(username=name) for name in ("ann", "bob", "cat")]
    queue_burst(learners, labs)
    waiting = list(Submission.objects.filter(status=Submission.Status.QUEUED))
    shown = sorted(waiting, key=lambda s: queue_position(submission=s))

    assert [queue_position(submission=s) for s in shown] == list(range(1, len(waiting) + 1))
    assert [s.learner.username for s in shown] == claim_all()


def test_a_learner_arriving_late_goes_before_the_others_second_runs(labs):
    early = [UserFactory(username=name) for name in ("ann", "bob")]
    queue_burst(early, labs)
    assert [submission_claim_next(queues=["cpu"], worker="w").learner.username for _ in "ab"] == [
        "ann",
        "bob",
    ]
    late = UserFactory(username="zed")
    submission_create(learner=late, lab=labs[0], code=TINY_SOLUTION)

    assert claim_all()[:3] == ["zed", "ann", "bob"]


def test_within_one_learner_runs_go_oldest_first(labs):
    ann = UserFactory(username="ann")
    queue_burst([ann], labs)
    claimed = []
    while (run := submission_claim_next(queues=["cpu"], worker="w")) is not None:
        claimed.append(run.lab_id)
    assert claimed == [lab.pk for lab in labs]


def test_a_requeued_run_keeps_its_place_instead_of_jumping_the_queue(labs, settings):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    for lab in labs[1:3]:  # ann has had two runs this hour, bob none
        done = Submission.objects.create(learner=ann, lab=lab, code="x = 1", status="graded")
        Submission.objects.filter(pk=done.pk).update(started_at=timezone.now())
    anns = submission_create(learner=ann, lab=labs[0], code=TINY_SOLUTION)
    assert submission_claim_next(queues=["cpu"], worker="w").pk == anns.pk
    bobs = submission_create(learner=bob, lab=labs[0], code=TINY_SOLUTION)
    Submission.objects.filter(pk=anns.pk).update(
        heartbeat_at=timezone.now()
        - datetime.timedelta(seconds=settings.ACADEMY_STALE_RUN_SECONDS + 5)
    )
    assert submissions_requeue_stale() == [anns.pk]

    # Had ann's run never been claimed, bob's (his first this hour) would go first: it still
    # does. An interrupted run is no way past the learners who have had fewer runs.
    assert queue_position(submission=Submission.objects.get(pk=bobs.pk)) == 1
    assert submission_claim_next(queues=["cpu"], worker="w").pk == bobs.pk


def test_a_run_requeued_after_its_worker_died_is_not_put_behind_for_its_own_start(labs, settings):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    first = submission_create(learner=ann, lab=labs[0], code=TINY_SOLUTION)
    submission_create(learner=bob, lab=labs[0], code=TINY_SOLUTION)
    assert submission_claim_next(queues=["cpu"], worker="w").pk == first.pk
    Submission.objects.filter(pk=first.pk).update(
        heartbeat_at=timezone.now()
        - datetime.timedelta(seconds=settings.ACADEMY_STALE_RUN_SECONDS + 5)
    )
    assert submissions_requeue_stale() == [first.pk]

    # Its own interrupted start does not count against ann: she queued first, she goes first.
    assert submission_claim_next(queues=["cpu"], worker="w").pk == first.pk


def test_runs_started_before_the_fairness_window_do_not_count(labs):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    old = Submission.objects.create(learner=ann, lab=labs[3], code="x = 1", status="graded")
    Submission.objects.filter(pk=old.pk).update(
        started_at=timezone.now() - datetime.timedelta(hours=2)
    )
    recent = Submission.objects.create(learner=bob, lab=labs[3], code="x = 1", status="graded")
    Submission.objects.filter(pk=recent.pk).update(started_at=timezone.now())
    submission_create(learner=bob, lab=labs[0], code=TINY_SOLUTION)
    submission_create(learner=ann, lab=labs[0], code=TINY_SOLUTION)

    order = list(submissions_fair_order(queues=["cpu"]).values_list("learner__username", "recent"))
    assert order == [("ann", 0), ("bob", 1)]


def test_a_wake_up_claims_only_its_own_queue_and_skips_cancelled_runs(labs):
    gpu_lab = labs[1]
    gpu_lab.queue = Lab.Queue.GPU
    gpu_lab.save()
    ann = UserFactory(username="ann")
    cancelled = submission_create(learner=ann, lab=labs[0], code=TINY_SOLUTION)
    Submission.objects.filter(pk=cancelled.pk).update(status=Submission.Status.CANCELLED)
    on_gpu = submission_create(learner=ann, lab=gpu_lab, code=TINY_SOLUTION)

    assert submission_claim_next(queues=["cpu"], worker="w") is None
    assert submission_claim_next(queues=["gpu"], worker="w").pk == on_gpu.pk
    assert submission_claim_next(queues=["gpu"], worker="w") is None


def test_a_claimed_row_is_not_claimed_again_by_a_second_wake_up(labs):
    ann = UserFactory(username="ann")
    only = submission_create(learner=ann, lab=labs[0], code=TINY_SOLUTION)
    assert submission_claim_next(queues=["cpu"], worker="w1").pk == only.pk
    assert submission_claim_next(queues=["cpu"], worker="w2") is None
    only.refresh_from_db()
    assert (only.deliveries, only.worker) == (1, "w1")


def test_the_direct_path_runs_the_given_row_and_not_the_fairest(labs):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    submission_create(learner=ann, lab=labs[0], code=TINY_SOLUTION)
    later = submission_create(learner=bob, lab=labs[0], code=TINY_SOLUTION)
    Submission.objects.filter(pk=later.pk).update(status=Submission.Status.GRADED)

    # validate_course's path: a named row that is not queued is not claimable, and nothing else runs.
    assert submission_run(submission_id=later.pk, worker="validate_course") is None
    assert Submission.objects.filter(status=Submission.Status.RUNNING).count() == 0


def test_the_fair_order_is_one_query_however_long_the_queue(labs, django_assert_num_queries):
    learners = [UserFactory(username=f"l{n}") for n in range(10)]
    queue_burst(learners, labs)
    with django_assert_num_queries(1):
        assert len(list(submissions_fair_order(queues=["cpu"])[:5])) == 5


def messages_in(queue: str) -> int:
    from runs.sweep import messages_waiting

    return messages_waiting(queue)


def test_the_sweep_replaces_lost_wake_ups_once_and_does_not_flood_the_queue(labs, settings):
    from academy.celery import app

    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    for learner in (ann, bob):
        submission_create(learner=learner, lab=labs[0], code=TINY_SOLUTION)
    app.control.purge()  # the broker restarted and forgot both wake-ups
    assert messages_in("cpu") == 0
    assert submissions_requeue_stale() == []
    assert messages_in("cpu") == 0  # not yet: their messages may just be on their way

    Submission.objects.update(
        created_at=timezone.now()
        - datetime.timedelta(seconds=settings.ACADEMY_STALE_RUN_SECONDS + 1)
    )
    submissions_requeue_stale()
    assert messages_in("cpu") == 2
    submissions_requeue_stale()  # the next sweep finds the messages there: none added
    assert messages_in("cpu") == 2
    app.control.purge()
