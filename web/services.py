"""What the learner pages do, composed from the domain apps' services.

The rules themselves live below (grading decides what is open, labs what a submission
may be); these functions put together the steps one page action takes, so a view calls
one of them and renders.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from academy.ratelimit import RateLimit, wait_phrase
from academy.refusals import Refusal
from courses.models import Module
from grading.selectors import CourseProgress, course_progress, module_is_open
from grading.services import module_start
from labs.models import Lab, Precheck, Prediction, Submission
from labs.services.queries import precheck_create, prediction_create
from labs.services.submissions import submission_create

# Attempts per day are the lab's quota; this only stops bursts of posts (scripts, double clicks).
SUBMIT_BURST = RateLimit("lab-submit", limit=6, window_seconds=60)
# Prechecks and predictions use no attempt, so these are their only bound: a worker's
# fast queue serves everyone, and one learner's script must not fill it.
PRECHECK_BURST = RateLimit("lab-precheck", limit=10, window_seconds=60)
PREDICT_BURST = RateLimit("run-predict", limit=12, window_seconds=60)


def module_open(*, learner: User, module: Module) -> CourseProgress:
    """The learner's progress in the module's course, after recording their first visit to
    the module if it is open to them. Read once on later visits; twice on the first, whose
    start changes it."""
    progress = course_progress(learner=learner, course=module.course)
    state = progress.state_of(module)
    if state.is_open and state.status == "not_started":
        module_start(learner=learner, module=module)
        progress = course_progress(learner=learner, course=module.course)
    return progress


def lab_submit(*, learner: User, module: Module, lab: Lab, code: str) -> Submission:
    """Queue the learner's code for a run of `lab`, or raise a Refusal saying why not."""
    if wait := SUBMIT_BURST.hit(str(learner.pk)):
        # Refused posts count too: a script resubmitting broken code is stopped as well.
        raise Refusal(
            _("You are submitting too fast: wait %(wait)s and try again.")
            % {"wait": wait_phrase(wait)},
            status=429,
        )
    if not module_is_open(learner=learner, module=module):
        raise Refusal(_("This lab is locked: complete the earlier stages first."), status=422)
    return submission_create(learner=learner, lab=lab, code=code)


def lab_precheck(*, learner: User, module: Module, lab: Lab, code: str) -> Precheck:
    """Queue a precheck of the learner's code, or raise a Refusal saying why not."""
    if wait := PRECHECK_BURST.hit(str(learner.pk)):
        raise Refusal(
            f"You are prechecking too fast: wait {wait_phrase(wait)} and try again.", status=429
        )
    if not module_is_open(learner=learner, module=module):
        raise Refusal("This lab is locked: complete the earlier stages first.", status=422)
    return precheck_create(learner=learner, lab=lab, code=code)


def run_predict(*, learner: User, submission: Submission, texts: list[str]) -> Prediction:
    """Queue texts for the learner's graded run's model, or raise a Refusal saying why not."""
    if wait := PREDICT_BURST.hit(str(learner.pk)):
        raise Refusal(
            f"You are asking too fast: wait {wait_phrase(wait)} and try again.", status=429
        )
    return prediction_create(learner=learner, submission=submission, texts=texts)
