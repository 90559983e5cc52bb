"""PostgreSQL keeps the grading path's statements prepared (parsed and planned
once per connection): server-side binding is on by default and the queue's
statement has one text for every expert, whatever clips a tab already holds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from annotation import sql
from annotation.shuffle import shuffle_key
from tests.factories import ClipFactory, ExpertFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_queue_statement_is_prepared_once_for_every_expert_and_exclusion():
    clips = ClipFactory.create_batch(6)
    experts = ExpertFactory.create_batch(3)
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    runs = 0
    for expert in experts:
        for exclude in ({clips[0].pk}, {clips[1].pk, clips[2].pk}, set()):
            rows = sql.queue_fresh_rows(
                connection,
                expert_id=expert.pk,
                now=timezone.now(),
                wanted=40,
                shuffle=shuffle_key(expert.pk),
                limit=2,
                exclude=exclude,
            )
            runs += 1
            assert len(rows) == 2 and not {row[0] for row in rows} & exclude
    assert runs > threshold
    queue = [s for s in _prepared() if "annotation_clipdistribution d" in s]
    # The key and the exclusion are parameters: no expert id, key or clip id
    # in the text, so nine calls share one prepared statement (or two: the
    # exclusion is left out of the text when there is none).
    assert 1 <= len(queue) <= 2, queue
    for text in queue:
        for expert in experts:
            assert str(shuffle_key(expert.pk)[0]) not in text


def test_the_token_lookup_and_progress_counts_are_prepared(client):
    from rest_framework.authtoken.models import Token

    ClipFactory.create_batch(3)
    expert = ExpertFactory()
    token = Token.objects.create(user=expert)
    for _ in range(8):
        response = client.post(
            "/api/clips/next/", HTTP_AUTHORIZATION=f"Token {token.key}"
        )
        assert response.status_code == 200
    prepared = " ".join(_prepared())
    assert "authtoken_token" in prepared
    assert "annotation_repeatvote WHERE expert_id" in prepared
