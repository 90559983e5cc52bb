"""The Django project. Loading the Celery app here makes ``shared_task`` use it."""
