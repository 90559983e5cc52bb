"""Settings of who gets in and how (imported by ``config/settings.py``): sign-in
throttling, trusted proxies, who may read /metrics, sign-in through the
hospital's identity provider (OpenID Connect) and the admins' second factor.
Every value comes from the environment; .env.example documents each."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from config.env import env_int, env_list, env_str

# Sign-in throttling (login page and API token): this many failures for one
# username from one address lock it out for LOGIN_LOCKOUT_SECONDS; so many from one
# address (any usernames) lock the address as long; past the site-wide rate per
# minute, sign-ins wait for the next minute (annotation/services/throttle.py).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 50, minimum=1)
LOGIN_GLOBAL_FAILURES_PER_MINUTE = env_int(
    "LOGIN_GLOBAL_FAILURES_PER_MINUTE", 300, minimum=1
)
# Proxies whose X-Forwarded-For names the client (addresses or networks, e.g. the
# compose network); empty = REMOTE_ADDR is the client.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _network in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_network!r} is not an address or network "
            "(e.g. 172.16.0.0/12)."
        ) from None
# Who may scrape /metrics (operations/metrics.py): direct callers from these
# addresses or networks only (docker-compose.yml: the monitoring network); a
# request through the proxy never. "off" serves the metrics to nobody.
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"]
)
if METRICS_ALLOWED_NETWORKS == ["off"]:
    METRICS_ALLOWED_NETWORKS = []
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not an address or network "
            "(e.g. 172.31.250.0/24), or off."
        ) from None

# Sign-in through the hospital's identity provider (OpenID Connect, authorization
# code flow with PKCE; mozilla-django-oidc; annotation/oidc.py), beside local
# accounts. Off unless OIDC_CLIENT_ID is set; then the provider's issuer and
# endpoints are required. A new account gets its role from OIDC_ROLE_CLAIM when
# one of its values is listed for a role, otherwise none until an admin gives one
# (never admin by default).
OIDC_ENABLED = env_str("OIDC_CLIENT_ID", "off") != "off"
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "the hospital's sign-in")
OIDC_ROLE_CLAIM = env_str("OIDC_ROLE_CLAIM", "off")
OIDC_EXPERT_VALUES = env_list("OIDC_EXPERT_VALUES", [])
OIDC_OPERATOR_VALUES = env_list("OIDC_OPERATOR_VALUES", [])
OIDC_ADMIN_VALUES = env_list("OIDC_ADMIN_VALUES", [])
if OIDC_ENABLED:
    OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
    OIDC_OP_ISSUER = env_str("OIDC_ISSUER")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env_str("OIDC_USERINFO_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_JWKS_ENDPOINT")
    OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGORITHM", "RS256")
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
LOGIN_REDIRECT_URL_FAILURE = "/login/?signin=failed"
# Admins' second factor (TOTP, django-otp): an admin who set one up gives it at
# every sign-in; "required" makes every admin set one up before any admin page.
# Default: off (optional per admin).
ADMIN_SECOND_FACTOR = env_str("ADMIN_SECOND_FACTOR", "off")
if ADMIN_SECOND_FACTOR not in {"off", "required"}:
    raise ImproperlyConfigured(
        f"ADMIN_SECOND_FACTOR={ADMIN_SECOND_FACTOR!r}: use off or required."
    )
OTP_TOTP_ISSUER = "SpermGrade"
