"""The worker: Celery tasks, the pipeline of one run, the sweep, job folders, commands."""
