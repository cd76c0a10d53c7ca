"""The shipped course's diagrams, links and knowledge checks, as learners get them."""

from __future__ import annotations

import re

from courses.authoring.parse import parse_course_folder
from tests.conftest import SHIPPED_COURSE

SVG = re.compile(r"<svg\b[^>]*>.*?</svg>", re.S)


def test_every_diagram_survives_sanitising_with_a_text_alternative():
    course = parse_course_folder(SHIPPED_COURSE)
    diagrams = 0
    for module in course.modules:
        source, rendered = SVG.findall(module.body_markdown), SVG.findall(module.body_html)
        assert len(rendered) == len(source), module.slug
        for svg, original in zip(rendered, source, strict=True):
            diagrams += 1
            assert 'role="img"' in svg and re.search(r'aria-label="[^"]{10,}"', svg), module.slug
            assert re.search(r"<title>[^<]{20,}</title>", svg), module.slug
            assert "viewBox=" in svg
            # Arrowheads are markers; the allow-list must keep them and their references.
            if "marker-end" in original:
                assert "<marker" in svg and "marker-end=" in svg, module.slug
    assert diagrams >= 8


def test_case_studies_link_to_the_labs_that_practise_them():
    course = parse_course_folder(SHIPPED_COURSE)
    slugs = {m.slug for m in course.modules}
    expected = {
        "case-intent-routing": {"lab-many-classes", "lab-capstone"},
        "case-sentiment-monitoring": {"lab-first-fine-tune"},
    }
    for module in course.modules:
        links = set(re.findall(r'href="\.\./([a-z0-9-]+)/"', module.body_html))
        assert links <= slugs, (module.slug, links - slugs)
        assert expected.get(module.slug, set()) <= links, module.slug


def test_every_theory_and_case_study_module_has_a_passable_check():
    course = parse_course_folder(SHIPPED_COURSE)
    for module in course.modules:
        if module.kind == "lab":
            assert module.check is None
            continue
        assert module.check is not None, module.slug
        questions = module.check.questions
        low, high = (3, 5) if module.kind == "case_study" else (2, 4)
        shown = min(module.check.draw_count or len(questions), len(questions))
        assert low <= shown <= high, module.slug  # what one attempt asks
        # Answering every question right always passes; one wrong answer may be allowed.
        assert module.check.pass_mark <= 100
        for question in questions:
            assert all(option.explanation_html for option in question.options), module.slug
            assert question.options or (question.numeric and question.numeric.explanation_html)


def test_reimporting_the_shipped_course_leaves_its_checks_untouched(db):
    from courses.models import CheckQuestion
    from labs.services.authoring import course_folder_import

    course_folder_import(path=SHIPPED_COURSE)
    ids = set(CheckQuestion.objects.values_list("pk", "fingerprint"))
    report = course_folder_import(path=SHIPPED_COURSE)
    assert not [line for line in report.updated if line.startswith(("module", "check"))]
    assert set(CheckQuestion.objects.values_list("pk", "fingerprint")) == ids


def test_the_shipped_course_can_be_completed_by_passing_every_check(db, shipped_course):
    from django.utils import timezone

    from courses.models import Enrollment
    from grading.models import ModuleProgress
    from grading.selectors import course_progress
    from tests.factories import UserFactory, complete_module

    learner = UserFactory(username="finisher")
    required = [
        s.module
        for s in course_progress(learner=learner, course=shipped_course).modules
        if s.module.required
    ]
    for module in [m for m in required if m.kind == "lab"]:  # graded runs: tests/labs
        ModuleProgress.objects.create(
            learner=learner, module=module, status="completed", completed_at=timezone.now()
        )
    for module in [m for m in required if m.kind != "lab"]:  # in course order, as unlocked
        complete_module(learner=learner, module=module)
    assert course_progress(learner=learner, course=shipped_course).is_complete
    assert Enrollment.objects.get(learner=learner, course=shipped_course).completed_at


# Issue 14's new modules: where each sits, and what it must teach.
NEW_MODULES = {
    "prompting-retrieval-or-fine-tuning": ("foundations", "theory", ["Gururangan", "DAPT"]),
    "training-within-limits": (
        "doing-it-well",
        "theory",
        ["gradient_accumulation_steps", "bf16", "gradient_checkpointing", "lab-peft"],
    ),
    "labelling-data": ("doing-it-well", "theory", ["Cohen", "kappa", "active learning"]),
    "case-recommendation": ("at-work", "case_study", ["recall@", "NDCG", "MRR", "PIPL"]),
    "further-reading": ("at-work", "theory", ["Vaswani", "CLUE", "AdaLoRA", "huggingface.co"]),
}


def test_new_modules_sit_in_their_stages_and_end_with_a_check():
    course = parse_course_folder(SHIPPED_COURSE)
    stage_of = {m.slug: stage.slug for stage in course.stages for m in stage.modules}
    by_slug = {m.slug: m for m in course.modules}
    for slug, (stage, kind, phrases) in NEW_MODULES.items():
        module = by_slug[slug]
        assert (stage_of[slug], module.kind) == (stage, kind), slug
        assert module.check is not None and module.check.questions, slug
        for phrase in phrases:
            assert phrase.lower() in module.body_markdown.lower(), (slug, phrase)


def test_new_modules_checks_do_not_give_the_answer_away_by_length():
    course = parse_course_folder(SHIPPED_COURSE)
    for module in course.modules:
        if module.slug not in NEW_MODULES:
            continue
        assert module.check is not None
        single = [q for q in module.check.questions if sum(o.correct for o in q.options) == 1]
        tells = 0
        for question in single:
            lengths = [len(o.text_markdown.strip()) for o in question.options]
            correct = next(n for n, o in zip(lengths, question.options, strict=True) if o.correct)
            tells += correct == max(lengths)
        assert tells * 2 <= len(single), module.slug


def test_compliance_module_sets_the_pipl_and_chinese_rules_beside_the_gdpr():
    course = parse_course_folder(SHIPPED_COURSE)
    body = next(
        m for m in course.modules if m.slug == "responsible-and-compliant-use"
    ).body_markdown
    for phrase in (
        "GDPR",
        "Personal Information Protection Law",
        "Art. 28\N{EN DASH}29",
        "Art. 55\N{EN DASH}56",
        "Art. 24",
        "Art. 38\N{EN DASH}40",
        "Data Security Law",
        "Generative Artificial Intelligence Services",
        "algorithmic recommendation",
    ):
        assert phrase in body, phrase
