from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs.jobs import jobs_usage
from sandbox import SandboxMode, detect_capabilities, nvidia_device_nodes

MB = 1024 * 1024


class Command(BaseCommand):
    help = (
        "Print what this machine enforces on learner code: the sandbox (strict or basic), the "
        "memory cap (cgroup v1/v2, or the address-space fallback), each run's own process "
        "limit (a pids cgroup, or a uid of its own) and job folder quota, what is missing, and "
        "the disk the job folders hold. Exits non-zero when the configured mode cannot run here."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        # A fresh probe, not the worker's cached one: the operator may have just fixed something.
        caps = detect_capabilities(
            memory_cgroup_parent=settings.ACADEMY_SANDBOX_CGROUP_PARENT,
            pids_cgroup_parent=settings.ACADEMY_SANDBOX_PIDS_CGROUP_PARENT,
            uid_range=settings.ACADEMY_SANDBOX_UID_RANGE,
        )
        mode = SandboxMode(settings.ACADEMY_SANDBOX_MODE)
        self.stdout.write(f"Configured mode: {mode} (ACADEMY_SANDBOX_MODE).")
        parent = settings.ACADEMY_SANDBOX_CGROUP_PARENT or "the worker's own cgroup"
        self.stdout.write(f"Memory cgroup parent: {parent} (ACADEMY_SANDBOX_CGROUP_PARENT).")
        self.stdout.write(caps.describe())
        if caps.job_quota:
            self.stdout.write(
                f"Job folder quota: {settings.ACADEMY_JOB_DISK_MB} MB per run "
                "(ACADEMY_JOB_DISK_MB)."
            )
        gpus = nvidia_device_nodes()
        self.stdout.write(
            f"GPU device nodes for `gpu` labs: {', '.join(gpus)}."
            if gpus
            else "GPU device nodes: none on this machine (`gpu` labs train on the CPU here)."
        )
        self._write_job_folders()
        if mode is SandboxMode.STRICT and not caps.full:
            raise CommandError(
                "The strict sandbox cannot run on this machine; workers here will refuse lab "
                "runs: " + "; ".join(caps.missing_for_strict()) + "."
            )
        if mode is SandboxMode.BASIC:
            self.stdout.write(
                "WARNING: basic mode runs learner code with rlimits only, without isolation."
            )

    def _write_job_folders(self) -> None:
        usage = jobs_usage()
        self.stdout.write(
            f"Job folders: {usage.folders} under {settings.ACADEMY_JOBS_DIR}, holding "
            f"{usage.bytes_held / MB:.1f} MB; a graded run keeps its checkpoint "
            f"{settings.ACADEMY_JOB_RETENTION_DAYS} days (ACADEMY_JOB_RETENTION_DAYS)."
        )
        free, floor = usage.disk_free // MB, settings.ACADEMY_JOBS_MIN_FREE_MB
        self.stdout.write(
            f"Their disk: {free} MB free of {usage.disk_total // MB} MB; runs are claimed only "
            f"above {floor} MB (ACADEMY_JOBS_MIN_FREE_MB)"
            + (": BELOW IT NOW, this worker claims nothing." if free < floor else ".")
        )
