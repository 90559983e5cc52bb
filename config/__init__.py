"""The Django project: settings, URLs, WSGI/ASGI and the Celery app (config.celery).

Loading the Celery app here makes it the current app in every process that loads
Django, so ``annotation.services.enqueue`` sends tasks by name through it.
"""

from config.celery import app as celery_app

__all__ = ["celery_app"]
