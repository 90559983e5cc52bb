"""Celery workers: the app, thin tasks, and pure video code in ``video``."""
