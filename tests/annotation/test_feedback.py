"""After-vote feedback: off by default, experts only, final votes only, panel
figures by hand, and never a model output."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation import selectors, services
from annotation.handles import presentation_handle, short_label
from annotation.models import SiteSetting, Vote
from tests.factories import ClipFactory, ExpertFactory

pytestmark = pytest.mark.django_db


def _on():
    SiteSetting.objects.update_or_create(pk=1, defaults={"expert_feedback": True})
    cache.clear()


@pytest.fixture
def voted(settings):
    settings.VOTE_UNDO_SECONDS = 120
    me, a, b = ExpertFactory(), ExpertFactory(), ExpertFactory()
    clips = ClipFactory.create_batch(3)
    long_ago = timezone.now() - timedelta(hours=2)
    # Clip 0: I say C, the rest say A and B (mean 1.5): bias 3 - 1.5 = +1.5.
    # Clip 1: I say A, the rest say A and A: bias 0. Clip 2: my vote is fresh.
    rows = [
        (me.pk, clips[0].pk, "C", long_ago),
        (a.pk, clips[0].pk, "A", long_ago),
        (b.pk, clips[0].pk, "B", long_ago),
        (me.pk, clips[1].pk, "A", long_ago + timedelta(minutes=1)),
        (a.pk, clips[1].pk, "A", long_ago),
        (b.pk, clips[1].pk, "A", long_ago),
        (a.pk, clips[2].pk, "E", long_ago),
    ]
    services.votes_bulk_create_simulated(votes=rows, seconds_spent=5.0)
    Vote.objects.create(expert=me, clip=clips[2], grade="A")  # now: not final
    return me, clips


def test_feedback_is_off_by_default(voted):
    me, _ = voted
    cache.clear()
    client = Client()
    client.force_login(me)
    assert client.get(reverse("feedback")).status_code == 404
    assert b"Where I stand" not in client.get(reverse("grade")).content


def test_feedback_shows_final_votes_against_the_rest_by_hand(voted):
    me, clips = voted
    _on()
    result = selectors.expert_feedback(expert=me)
    labels = [
        short_label(presentation_handle(expert_id=me.pk, clip_id=c.pk, repeat=False))
        for c in clips[:2]
    ]
    assert [r["clip"] for r in result["rows"]] == labels
    first, second = result["rows"]
    assert first["rest_mean"] == pytest.approx(1.5) and first["rest_mode"] == "A"
    assert first["running_bias"] == pytest.approx(1.5)
    assert second["running_bias"] == pytest.approx(0.75)  # (1.5 + 0) / 2
    assert result["bias"] == pytest.approx(0.75)
    assert first["within_one"] is False and second["within_one"] is True
    client = Client()
    client.force_login(me)
    page = client.get(reverse("feedback"))
    assert page.status_code == 200 and b"0.75" in page.content
    assert page.content.count(b"<tr><td>") == 2  # the fresh vote is not shown
    assert b"predict" not in page.content.lower()
    assert b"Where I stand" in client.get(reverse("grade")).content


def test_only_experts_open_feedback(voted, client):
    _on()
    assert client.get(reverse("feedback")).status_code == 302
    admin = Client()
    admin.force_login(services.admin_create(username="x", password="x-pass-123"))
    assert admin.get(reverse("feedback")).status_code == 403
