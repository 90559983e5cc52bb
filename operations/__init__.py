"""Running SpermGrade in a lab: health and readiness answers for the proxy and
docker compose.

    health.py       what /readyz checks (database, migrations, broker, media)
    middleware.py   answers /healthz and /readyz before anything else runs
"""
