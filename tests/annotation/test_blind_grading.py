"""Blind grading: before voting, no votes, distribution or model output are shown."""

import json

import pytest

from annotation import services
from annotation.models import SiteSetting
from tests.factories import ExpertFactory

pytestmark = pytest.mark.django_db

FORBIDDEN_KEYS = {
    "distribution",
    "panel",
    "counts",
    "probs",
    "votes",
    "n_votes",
    "latent_quality",
    "prediction",
    "predicted",
    "mean_score",
}


def _keys(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | set().union(*(_keys(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_keys(v) for v in obj)) if obj else set()
    return set()


def test_next_clip_and_clip_endpoints_reveal_nothing_of_the_panel(expert_client, clips):
    for clip in clips:
        for _ in range(3):
            services.vote_create(expert=ExpertFactory(), clip=clip, grade="E")
    body = expert_client.post("/api/clips/next/").json()
    assert not _keys(body) & FORBIDDEN_KEYS
    for url in ["/api/clips/", f"/api/clips/{clips[0].pk}/"]:
        body = expert_client.get(url).json()
        assert not _keys(body) & FORBIDDEN_KEYS, url


def test_vote_response_hides_the_panel_unless_the_admin_reveals_it(
    expert_client, offered_clips
):
    services.vote_create(expert=ExpertFactory(), clip=offered_clips[0], grade="E")
    response = expert_client.post(
        "/api/votes/", {"clip": offered_clips[0].pk, "grade": "A"}, format="json"
    )
    assert "panel" not in response.json()

    services.site_setting_update(reveal_panel_after_vote=True)
    response = expert_client.post(
        "/api/votes/", {"clip": offered_clips[1].pk, "grade": "A"}, format="json"
    )
    assert SiteSetting.load().reveal_panel_after_vote
    assert response.json()["panel"]["counts"] == [1, 0, 0, 0, 0]


def test_with_the_panel_revealed_a_vote_is_final_and_cannot_be_changed(
    expert_client, offered_clips
):
    """The reveal forfeits the undo: the answer that shows the panel says the
    vote is final, and a change of it (the grading page's undo) is refused."""
    services.vote_create(expert=ExpertFactory(), clip=offered_clips[0], grade="E")
    before = expert_client.post(
        "/api/votes/", {"clip": offered_clips[1].pk, "grade": "B"}, format="json"
    ).json()
    assert before["undo_until"] is not None and "panel" not in before

    services.site_setting_update(reveal_panel_after_vote=True)
    shown = expert_client.post(
        "/api/votes/", {"clip": offered_clips[0].pk, "grade": "A"}, format="json"
    )
    body = shown.json()
    assert shown.status_code == 201
    assert body["panel"]["counts"] == [1, 0, 0, 0, 1] and body["undo_until"] is None
    change = expert_client.patch(body["change_url"], {"grade": "E"}, format="json")
    assert change.status_code == 409 and "final" in change.json()["detail"]
    assert "panel" not in change.json()
    # A vote cast before the reveal was switched on is final now too: nobody
    # changes a grade after seeing the panel.
    late = expert_client.patch(before["change_url"], {"grade": "C"}, format="json")
    assert late.status_code == 409 and "panel" not in late.json()
    from annotation.models import Vote

    assert dict(
        Vote.objects.filter(clip__in=offered_clips[:2], grade__in="AB").values_list(
            "clip_id", "grade"
        )
    ) == {offered_clips[0].pk: "A", offered_clips[1].pk: "B"}


def test_admin_sees_distribution_on_clip_detail(admin_client_api, clips):
    services.vote_create(expert=ExpertFactory(), clip=clips[0], grade="C")
    body = admin_client_api.get(f"/api/clips/{clips[0].pk}/").json()
    assert body["distribution"]["counts"] == [0, 0, 1, 0, 0]


def test_repeat_vote_answer_has_the_same_shape_as_a_first_vote(
    expert, expert_client, clips, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import Vote
    from tests.factories import offer

    offer(expert, [clips[0]])
    first = expert_client.post(
        "/api/votes/", {"clip": clips[0].pk, "grade": "B"}, format="json"
    ).json()
    Vote.objects.update(created_at=timezone.now() - timedelta(days=2))
    settings.REPEAT_SHARE = 1.0
    offered = expert_client.post("/api/clips/next/?count=1").json()["clips"]
    assert offered[0]["id"] == clips[0].pk
    repeat = expert_client.post(
        "/api/votes/", {"clip": clips[0].pk, "grade": "C"}, format="json"
    )
    assert repeat.status_code == 201
    assert set(repeat.json()) == set(first)
    # The progress counter moves as after any vote.
    assert repeat.json()["progress"]["graded"] == first["progress"]["graded"] + 1
    assert json.dumps(sorted(offered[0])) == json.dumps(
        sorted(expert_client.post("/api/clips/next/?count=1").json()["clips"][0])
    )
    changed = expert_client.patch(
        repeat.json()["change_url"], {"grade": "D"}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["grade"] == "D"


EXPERT_CLIP_FIELDS = {"id", "video_url", "n_frames", "fps", "size_px", "synthetic"}


def test_experts_see_only_what_grading_needs_and_only_clips_handed_to_them(
    expert, expert_client, admin_client_api, clips
):
    # Nothing handed out yet: no clip to list or open.
    assert expert_client.get("/api/clips/").json()["results"] == []
    assert expert_client.get(f"/api/clips/{clips[0].pk}/").status_code == 404
    offered = expert_client.post("/api/clips/next/?count=2").json()["clips"]
    handed = {c["id"] for c in offered}
    assert len(handed) == 2
    listed = expert_client.get("/api/clips/").json()["results"]
    assert {c["id"] for c in listed} == handed
    for clip in listed:
        # no patient, recording, frame span, measured speed (it predicts the
        # grade), creation time or kinematics
        assert set(clip) == EXPERT_CLIP_FIELDS
    assert set(offered[0]) == EXPERT_CLIP_FIELDS | {"lease_expires_at"}
    admin_view = admin_client_api.get(f"/api/clips/{offered[0]['id']}/").json()
    assert {"patient", "speed", "recording", "distribution"} <= set(admin_view)
