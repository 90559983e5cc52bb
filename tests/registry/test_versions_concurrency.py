"""On PostgreSQL: twenty admins promoting and rolling back at the same moment,
through the API and the pages, get answers (200/302, or 409 when the version is
already active) and never a 500; one version is active at the end, and every
activation recorded the version it replaced, in one unbroken chain."""

import random
import threading
from collections import Counter

import pytest
from django.db import connections
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from registry.models import ModelVersion, VersionEvent
from tests.factories import AdminFactory
from tests.registry.test_versions import _version

N_CALLS = 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_promotions_and_rollbacks_never_answer_500(
    _fast_password_hashing, _broker_folders
):
    from registry import services

    versions = [_version(n, 0.05 + 0.001 * n, 0.004) for n in range(1, 5)]
    for version in versions:  # what a registered version's answer shows
        version.metrics = {"mean": {"emd": version.emd_mean}, "std": {"emd": 0.004}}
        version.save(update_fields=["metrics"])
    services.model_version_promote(version_id=versions[0].pk, user=None)
    services.model_version_promote(version_id=versions[1].pk, user=None)
    admins = [AdminFactory() for _ in range(N_CALLS)]
    tokens = [Token.objects.create(user=a).key for a in admins]
    start = threading.Barrier(N_CALLS)
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        rng = random.Random(i)
        try:
            if i % 2:  # the API
                client = APIClient()
                client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[i]}")
                prefix = "/api/registry/versions"
            else:  # the pages
                client = Client()
                client.force_login(admins[i])
                prefix = "/registry/versions"
            target = rng.choice(versions)
            url = (
                f"{prefix}/rollback/" if i % 4 < 2 else f"{prefix}/{target.pk}/promote/"
            )
            start.wait(timeout=60)
            response = client.post(url)
            with lock:
                statuses[response.status_code] += 1
                if response.status_code not in (200, 201, 302, 409):
                    failures.append(
                        f"{url} {response.status_code} {response.content!r}"
                    )
        except Exception as exc:  # surfaced by the assertion below
            with lock:
                failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(N_CALLS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert statuses[500] == 0 and sum(statuses.values()) == N_CALLS
    assert ModelVersion.objects.filter(is_active=True).count() == 1
    activations = list(
        VersionEvent.objects.exclude(action=VersionEvent.Action.HELD).order_by("id")
    )
    assert activations[0].previous is None  # the very first activation
    for before, event in zip(activations, activations[1:]):
        assert event.previous_id == before.version_id, (before, event)
    assert activations[-1].version == ModelVersion.objects.get(is_active=True)
