"""The Django project: settings, URLs, WSGI/ASGI (the Celery app is workers.celery)."""
