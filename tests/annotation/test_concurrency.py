"""On PostgreSQL: 40 experts voting at once, each submitting every vote twice from
two threads, leave exactly one vote per expert and clip, no 500, and distributions
equal to the votes."""

import threading
from collections import Counter

import pytest
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import selectors
from annotation.handles import presentation_handle
from annotation.models import Vote, VoteHistory
from tests.factories import ClipFactory, ExpertFactory, offer

N_EXPERTS = 40
N_CLIPS = 4


@pytest.fixture(autouse=True)
def _fast_hash(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forty_experts_double_submitting_leave_one_vote_each():
    clips = ClipFactory.create_batch(N_CLIPS)
    experts = [ExpertFactory() for _ in range(N_EXPERTS)]
    tokens = {e.pk: Token.objects.create(user=e).key for e in experts}
    for expert in experts:
        offer(expert, clips)
    grade_of = {e.pk: "ABCDE"[i % 5] for i, e in enumerate(experts)}
    start = threading.Barrier(2 * N_EXPERTS)
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def submit(expert_id: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[expert_id]}")
            start.wait(timeout=60)
            for clip in clips:
                response = client.post(
                    "/api/votes/",
                    {
                        "clip": presentation_handle(
                            expert_id=expert_id, clip_id=clip.pk, repeat=False
                        ),
                        "grade": grade_of[expert_id],
                    },
                    format="json",
                )
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code not in (201, 409):
                        failures.append(f"{response.status_code} {response.content!r}")
        except Exception as exc:  # surfaced by the assertion below
            with lock:
                failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=submit, args=(e.pk,)) for e in experts for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failures, failures[:5]
    assert statuses == {201: N_EXPERTS * N_CLIPS, 409: N_EXPERTS * N_CLIPS}
    pairs = Counter(Vote.objects.values_list("expert_id", "clip_id"))
    assert len(pairs) == N_EXPERTS * N_CLIPS and set(pairs.values()) == {1}
    assert VoteHistory.objects.count() == N_EXPERTS * N_CLIPS
    assert selectors.distribution_recount_mismatches() == []
    expected = Counter(grade_of.values())
    for clip in clips:
        d = selectors.distribution_for_clip(clip_id=clip.pk)
        assert d["counts"] == [expected[g] for g in "ABCDE"]
        assert d["n_votes"] == N_EXPERTS
