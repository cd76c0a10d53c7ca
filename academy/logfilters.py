"""Log filters: Celery's routine lines about the periodic sweep, demoted to DEBUG.

Beat sends the sweep every 30 s and the worker logs its receipt and success, three INFO
lines each time, which in `make run`'s terminal buried the demo passwords printed once
above them. The sweep logs a warning of its own whenever it requeues or wakes anything,
so these lines say nothing an operator needs at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

# Celery's registered names of the periodic tasks whose routine lines are demoted.
ROUTINE_TASKS = frozenset({"labs.tasks.requeue_stale_runs"})


def _task_named(record: logging.LogRecord) -> str | None:
    args = record.args
    if isinstance(args, Mapping):  # the worker's "received" and "succeeded" lines
        name = args.get("name")
        return name if isinstance(name, str) else None
    if isinstance(args, tuple) and len(args) == 2:  # beat's "Sending due task NAME (TASK)"
        task = args[1]
        return task if isinstance(task, str) else None
    return None


class RoutineTaskFilter(logging.Filter):
    """Demote INFO records about a routine task to DEBUG; shown only where DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or _task_named(record) not in ROUTINE_TASKS:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
