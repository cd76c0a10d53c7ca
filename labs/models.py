"""Datasets, labs and submissions.

A dataset is rows in the database (split, text, label), so workers need only
the database, never a shared disk. A submission is a long job: a row with a
status, progress, timestamps, a heartbeat and its outcome — the row, not the
broker, is the truth about a run.
"""

from __future__ import annotations

import ast
from typing import Any

import pydantic
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from courses.authoring.source import explain
from courses.models import Module
from labs import authoring_schema as defaults
from labs.training.contract import DEFAULT_HYPERPARAMETERS


class Dataset(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Label order defines class ids 0..n-1 for every lab that uses the dataset.
    labels = models.JSONField(default=list)
    license_name = models.CharField(max_length=200)
    source_markdown = models.TextField(
        help_text="SOURCE.md: origin, license, citation, processing."
    )
    source_html = models.TextField(blank=True, editable=False)
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Example(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", _("Train")
        # A dataset's own development rows (e.g. CLINC150's validation split): every lab
        # on the dataset tunes on them instead of a share carved from its training rows.
        DEV = "dev", _("Development")
        # Never shown to learners, never exported, never written to a job folder.
        HELDOUT = "heldout", _("Held-out")

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="examples")
    split = models.CharField(max_length=10, choices=Split.choices)
    position = models.PositiveIntegerField()
    text = models.TextField()
    label = models.CharField(max_length=120)

    class Meta:
        verbose_name = _("example")
        verbose_name_plural = _("examples")
        ordering = ["dataset", "split", "position"]
        indexes = [models.Index(fields=["dataset", "split", "position"])]

    def __str__(self) -> str:
        return f"{self.dataset.slug}/{self.split}/{self.position}"


class Lab(models.Model):
    # Field defaults come from the course-folder schema (labs.authoring_schema): one set of
    # defaults for the admin, the importer and the exporter.

    class Queue(models.TextChoices):
        CPU = "cpu", _("CPU")
        GPU = "gpu", _("GPU (falls back to any GPU worker)")

    class Metric(models.TextChoices):
        ACCURACY = "accuracy", _("Accuracy")
        MACRO_F1 = "macro_f1", _("Macro-F1")
        CLASS_F1 = "class_f1", _("F1 of one class (set metric label)")
        # An intent router must answer the questions it knows and hand off the rest:
        # one number that is high only when both are.
        ROUTER = (
            "router",
            _(
                "Harmonic mean of in-scope accuracy and out-of-scope recall "
                "(set metric label to the out-of-scope class)"
            ),
        )

    class Floor(models.TextChoices):
        # Labels read in "a pass needs score ≥ 40 and every class's recall ≥ 0.30".
        CLASS_RECALL = "class_recall", _("every class's recall")
        MACRO_F1 = "macro_f1", _("macro-F1")
        CLASS_F1 = "class_f1", _("every class's F1")

    module = models.OneToOneField(Module, on_delete=models.CASCADE, related_name="lab")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="labs")
    train_subset_size = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Stratified, seeded subset of train so a CPU run stays short.",
    )
    subset_seed = models.PositiveIntegerField(default=defaults.DEFAULT_SUBSET_SEED)
    dev_fraction = models.FloatField(default=defaults.DEFAULT_DEV_FRACTION)
    base_model = models.CharField(
        max_length=300,
        default=defaults.DEFAULT_BASE_MODEL,
        help_text="'minilm-l6' (the packaged all-MiniLM-L6-v2) or an absolute path to a local model folder.",
    )
    starter_code = models.TextField()
    reference_solution = models.TextField()
    # The reference without its idea, each of which must fail (`validate_course` runs them):
    # [{"name": slug, "without": what was taken out, "code": the file}].
    ablations = models.JSONField(default=list, blank=True)
    required_hooks = models.JSONField(default=list, blank=True)
    # Hyperparameters the lab sets (e.g. a peak learning rate the learner's scheduler must
    # tame): the engine uses these, whatever the learner's HYPERPARAMETERS say.
    fixed_hyperparameters = models.JSONField(default=dict, blank=True)
    wall_time_seconds = models.PositiveIntegerField(default=defaults.DEFAULT_WALL_SECONDS)
    memory_mb = models.PositiveIntegerField(default=defaults.DEFAULT_MEMORY_MB)
    max_trainable_share = models.FloatField(
        null=True,
        blank=True,
        help_text="Most changed / total parameters the saved model may have against the base "
        "model (e.g. 0.05), checked by the grader; blank: no cap. The engine also stops a run "
        "that leaves more trainable before training, to save the learner the wait.",
    )
    # The `checkpoint:` section (labs.authoring_schema.LabCheckpoint); null: no section.
    checkpoint_rules = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text='What the saved model may differ in from the base model, e.g. {"may_change": '
        '["classifier.*"], "low_rank": ["bert.encoder.layer.*.attention.self.query.weight"], '
        '"max_rank": 8}; every other tensor must equal the base. Blank: anything may change.',
    )
    max_epochs = models.PositiveIntegerField(default=defaults.DEFAULT_MAX_EPOCHS)
    attempts_per_day = models.PositiveIntegerField(default=defaults.DEFAULT_ATTEMPTS_PER_DAY)
    queue = models.CharField(max_length=10, choices=Queue.choices, default=defaults.DEFAULT_QUEUE)
    metric = models.CharField(
        max_length=20, choices=Metric.choices, default=defaults.DEFAULT_METRIC
    )
    metric_label = models.CharField(max_length=120, blank=True)
    baseline = models.FloatField(help_text="Metric value that scores 0.")
    target = models.FloatField(help_text="Metric value that scores 100.")
    pass_mark = models.FloatField(
        default=defaults.DEFAULT_PASS_MARK, help_text="Score (0 to 100) needed to pass."
    )
    pass_floors = models.JSONField(
        default=dict,
        blank=True,
        help_text='What a pass also needs beside the score, e.g. {"class_recall": 0.3} (every '
        "class's recall at least 0.3); floors: class_recall, macro_f1, class_f1.",
    )
    # Set by "validate lab": the bar learners see, and proof the starter does not pass.
    reference_score = models.FloatField(null=True, blank=True, editable=False)
    starter_score = models.FloatField(null=True, blank=True, editable=False)
    validated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("lab")
        verbose_name_plural = _("labs")
        constraints = [
            # A rubric with target <= baseline cannot map a metric to a score.
            models.CheckConstraint(
                condition=Q(target__gt=F("baseline")), name="lab_target_above_baseline"
            )
        ]

    def __str__(self) -> str:
        title = self.module.title
        # Most lab modules are titled "Lab: …" already: no "Lab: Lab: …" in the admin.
        return title if title.lower().startswith("lab:") else f"Lab: {title}"

    def clean(self) -> None:
        if self.target is not None and self.baseline is not None and self.target <= self.baseline:
            raise ValidationError({"target": "The target must be above the baseline."})
        if self.metric == self.Metric.CLASS_F1 and not self.metric_label:
            raise ValidationError({"metric_label": "Name the class whose F1 is graded."})
        if self.metric == self.Metric.ROUTER and not self.metric_label:
            raise ValidationError({"metric_label": "Name the out-of-scope class."})
        share = self.max_trainable_share
        if share is not None and not 0 < share <= 1:
            raise ValidationError(
                {"max_trainable_share": "A share of the parameters: above 0, at most 1."}
            )
        if not 0 <= self.pass_mark <= 100:
            raise ValidationError({"pass_mark": "The pass mark is a score between 0 and 100."})
        self._clean_floors()
        self._clean_checkpoint_rules()
        self._clean_ablations()
        self._clean_fixed_hyperparameters()

    def _clean_floors(self) -> None:
        floors: Any = self.pass_floors
        if not isinstance(floors, dict):
            raise ValidationError({"pass_floors": "A mapping of floor names to values."})
        unknown = sorted(set(floors) - set(self.Floor.values))
        if unknown:
            raise ValidationError(
                {
                    "pass_floors": f"Unknown floor(s): {', '.join(unknown)} "
                    f"(floors: {', '.join(self.Floor.values)})."
                }
            )
        for name, value in floors.items():
            # A floor of 0 is no floor; above 1 no metric can reach it.
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise ValidationError(
                    {"pass_floors": f"The {name} floor is a number above 0, at most 1."}
                )

    def _clean_fixed_hyperparameters(self) -> None:
        fixed: Any = self.fixed_hyperparameters
        if not isinstance(fixed, dict):
            raise ValidationError(
                {"fixed_hyperparameters": "A mapping of hyperparameter names to values."}
            )
        unknown = sorted(set(fixed) - set(DEFAULT_HYPERPARAMETERS))
        if unknown:
            raise ValidationError(
                {
                    "fixed_hyperparameters": f"Unknown hyperparameter(s): {', '.join(unknown)} "
                    f"(known: {', '.join(DEFAULT_HYPERPARAMETERS)})."
                }
            )

    def _clean_ablations(self) -> None:
        ablations: Any = self.ablations
        if not isinstance(ablations, list):
            raise ValidationError({"ablations": "A list of ablations (name, without, code)."})
        names: set[str] = set()
        for number, ablation in enumerate(ablations, start=1):
            if not isinstance(ablation, dict) or set(ablation) != {"name", "without", "code"}:
                raise ValidationError(
                    {"ablations": f"Ablation {number} needs exactly: name, without, code."}
                )
            name = ablation["name"]
            if not isinstance(name, str) or not name or name != slugify(name) or name in names:
                raise ValidationError(
                    {"ablations": f"Ablation {number}'s name must be a new slug, got {name!r}."}
                )
            names.add(name)
            if not all(isinstance(ablation[key], str) for key in ("without", "code")):
                raise ValidationError({"ablations": f"Ablation {name}: text and code only."})
            try:
                ast.parse(ablation["code"])
            except SyntaxError as exc:
                raise ValidationError(
                    {"ablations": f"Ablation {name}: syntax error on line {exc.lineno}: {exc.msg}"}
                ) from None

    def _clean_checkpoint_rules(self) -> None:
        # The course-folder schema is the one statement of these rules; the admin's JSON is
        # checked with it too.
        if self.checkpoint_rules is None:
            return
        try:
            defaults.LabCheckpoint.model_validate(self.checkpoint_rules)
        except pydantic.ValidationError as exc:
            _, problem = explain(exc, model=defaults.LabCheckpoint, prefix=("checkpoint",))
            raise ValidationError({"checkpoint_rules": problem}) from None


class Submission(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        TRAINED = "trained", _("Trained (not graded)")
        GRADED = "graded", _("Graded")
        REJECTED = "rejected", _("Checkpoint refused")
        ERROR = "error", _("Error in your code")
        FAILED = "failed", _("Platform failure")
        CANCELLED = "cancelled", _("Cancelled")

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINAL = (
        Status.TRAINED,
        Status.GRADED,
        Status.REJECTED,
        Status.ERROR,
        Status.FAILED,
        Status.CANCELLED,
    )

    class Phase(models.TextChoices):
        TRAINING = "training", _("Training")
        GRADING = "grading", _("Grading")

    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions"
    )
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="submissions")
    code = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # How often a worker claimed this run; >1 means it was requeued after a loss.
    deliveries = models.PositiveIntegerField(default=0)
    platform_retries = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.TRAINING)
    # Instructor runs of the reference, the starter or an ablation ("validate lab"): no
    # progress, no quota.
    validation_of = models.CharField(
        max_length=10,
        blank=True,
        choices=[
            ("reference", "Reference solution"),
            ("starter", "Starter code"),
            ("ablation", "Ablation"),
        ],
    )
    # Which of the lab's ablations (its name), for validation_of="ablation".
    ablation = models.CharField(max_length=50, blank=True)
    # True once the learner's code started running: only such runs use an attempt.
    counts_as_attempt = models.BooleanField(default=False)

    device = models.CharField(max_length=100, blank=True)
    # "fp32" or "bf16": what the worker told the engine to train in (runs/jobs.py).
    training_precision = models.CharField(max_length=8, blank=True)
    sandbox_mode = models.CharField(max_length=20, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    epoch = models.FloatField(default=0)
    samples_per_second = models.FloatField(null=True, blank=True)
    loss_curve = models.JSONField(default=list, blank=True)  # [[step, loss], ...], downsampled
    dev_curve = models.JSONField(
        default=list, blank=True
    )  # [{epoch, train_loss, dev_loss, dev_accuracy}]
    run_info = models.JSONField(
        default=dict, blank=True
    )  # start event: params, examples, hyperparameters
    result = models.JSONField(default=dict, blank=True)  # done event
    error_message = models.TextField(blank=True)
    learner_traceback = models.TextField(blank=True)
    log_tail = models.TextField(blank=True)

    class Meta:
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["learner", "lab"],
                condition=Q(status__in=["queued", "running"], validation_of=""),
                name="one_active_run_per_learner_and_lab",
            )
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["learner", "lab", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.learner} {self.lab} {self.status}"

    @property
    def is_validation(self) -> bool:
        return bool(self.validation_of)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def progress_percent(self) -> int:
        if self.status in (self.Status.TRAINED, self.Status.GRADED, self.Status.REJECTED):
            return 100
        return min(100, round(100 * self.step / self.total_steps)) if self.total_steps else 0


class WorkerQuery(models.Model):
    """A short job a worker answers in seconds for one learner, outside the run's path:
    it uses no attempt, writes no grade and is not retried. The page polls the row."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the learner reads when the worker could not answer (never a host path).
    error_message = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class Precheck(WorkerQuery):
    """The learner's code checked against the contract on a tiny model (runs/precheck.py)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="prechecks")
    code = models.TextField()
    # labs.training.precheck's report.json: checks, lengths, trainable share, schedule.
    report = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["learner", "lab", "-created_at"])]

    def __str__(self) -> str:
        return f"Precheck #{self.pk} of {self.lab_id} by {self.learner_id}"


class Prediction(WorkerQuery):
    """Texts a learner typed, through their graded run's checkpoint (runs/inference.py)."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="predictions")
    texts = models.JSONField(default=list)
    # [{"text", "label", "probabilities": {label: p}}] in the order of `texts`.
    result = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"Prediction #{self.pk} on run {self.submission_id}"
