"""The Celery application. Workers: `celery -A academy worker -Q cpu` (add `gpu` on GPU boxes)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "academy.settings")

app = Celery("academy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The filesystem broker (embedded mode) needs its folders before the first message.
for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
    folder = (app.conf.broker_transport_options or {}).get(key)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)

# Beat keeps its schedule in var/, which a fresh production checkout (PostgreSQL and
# Redis: nothing else writes there) does not have yet; without it beat dies at start.
Path(app.conf.beat_schedule_filename).parent.mkdir(parents=True, exist_ok=True)
