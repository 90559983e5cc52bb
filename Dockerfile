# SpermGrade image: web (gunicorn), Celery workers and beat all run from it.
# The torch wheel on PyPI is the CUDA build with its own CUDA runtime, so the GPU
# worker needs only the host's NVIDIA driver and the NVIDIA container runtime.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SPERMGRADE_VAR_DIR=/app/var \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/var/staticfiles

# ffmpeg: command-line tools for inspecting and converting odd microscope recordings;
# the app itself decodes and encodes through PyAV's bundled libraries.
# postgresql-client: pg_dump and pg_restore for manage.py backup and restore
# (Debian 12's are version 15, as the compose server; a newer pg_dump also dumps
# an older server).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 --user-group spermgrade
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=spermgrade:spermgrade . .
# The commit the image is built from (.git stays out of the image): every model
# version records it. docker-compose.yml passes SPERMGRADE_CODE_VERSION through;
# build with SPERMGRADE_CODE_VERSION=$(git rev-parse HEAD) docker compose build.
ARG SPERMGRADE_CODE_VERSION=unknown
ENV SPERMGRADE_CODE_VERSION=${SPERMGRADE_CODE_VERSION}
RUN mkdir -p /app/var /data/media /data/celerybeat \
    && chown -R spermgrade:spermgrade /app/var /data

USER spermgrade
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--workers", "3", "--threads", "4", "--access-logfile", "-"]
