"""Running SpermGrade in a lab: health and readiness answers for the proxy and
docker compose, and backups with a verified restore.

    health.py       what /readyz checks (database, migrations, broker, media)
    middleware.py   answers /healthz and /readyz before anything else runs
    checksums.py    a backup folder's manifest and checksums (no Django)
    databases.py    dumping and restoring PostgreSQL (pg_dump) and SQLite
    services.py     backup_create, backup_prune, backup_verify, backup_restore
    management/     the backup and restore commands
"""
