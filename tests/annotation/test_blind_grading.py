"""Blind grading: before voting, no votes, distribution or model output are shown."""

import pytest

from annotation import services
from annotation.models import SiteSetting
from tests.factories import ExpertFactory, clip_id_of, handle

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
        assert expert_client.get(url).status_code == 403, url


def test_vote_response_hides_the_panel_unless_the_admin_reveals_it(
    expert, expert_client, offered_clips
):
    services.vote_create(expert=ExpertFactory(), clip=offered_clips[0], grade="E")
    response = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[0]), "grade": "A"},
        format="json",
    )
    assert "panel" not in response.json()

    services.site_setting_update(reveal_panel_after_vote=True)
    response = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[1]), "grade": "A"},
        format="json",
    )
    assert SiteSetting.load().reveal_panel_after_vote
    assert response.json()["panel"]["counts"] == [1, 0, 0, 0, 0]


def test_with_the_panel_revealed_a_vote_is_final_and_cannot_be_changed(
    expert, expert_client, offered_clips
):
    """The reveal forfeits the undo: the answer that shows the panel says the
    vote is final, and a change of it (the grading page's undo) is refused."""
    services.vote_create(expert=ExpertFactory(), clip=offered_clips[0], grade="E")
    before = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[1]), "grade": "B"},
        format="json",
    ).json()
    assert before["undo_until"] is not None and "panel" not in before

    services.site_setting_update(reveal_panel_after_vote=True)
    shown = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[0]), "grade": "A"},
        format="json",
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


# "marker": where the tracked head lies in each frame, in clip pixels: what the
# video shows anyway (the crop is centred on it), never a speed or a panel.
EXPERT_CLIP_FIELDS = {
    "id",
    "video_url",
    "n_frames",
    "fps",
    "size_px",
    "synthetic",
    "marker",
}


def test_experts_see_only_what_grading_needs_and_no_clip_ids(
    expert, expert_client, admin_client_api, clips
):
    # Experts do not browse the pool: clip list and detail are for admins.
    assert expert_client.get("/api/clips/").status_code == 403
    assert expert_client.get(f"/api/clips/{clips[0].pk}/").status_code == 403
    offered = expert_client.post("/api/clips/next/?count=2").json()["clips"]
    assert len({c["id"] for c in offered}) == 2
    # no patient, recording, frame span, measured speed (it predicts the grade),
    # creation time or kinematics; the clip is named by a handle, not its id
    assert set(offered[0]) == EXPERT_CLIP_FIELDS | {"lease_expires_at"}
    ids = {c.pk for c in clips}
    for clip in offered:
        assert isinstance(clip["id"], str) and len(clip["id"]) == 26
        assert str(clip_id_of(clip["id"])) not in clip["video_url"].split("/")
        assert clip_id_of(clip["id"]) in ids
    admin_view = admin_client_api.get(
        f"/api/clips/{clip_id_of(offered[0]['id'])}/"
    ).json()
    assert {"patient", "speed", "recording", "distribution"} <= set(admin_view)


def test_a_vote_made_final_by_the_reveal_stays_final_when_the_reveal_is_off(
    expert, expert_client, offered_clips
):
    """Finality is stored with the vote: turning the reveal off within the undo
    window does not make a grade given after seeing the panel changeable."""
    services.site_setting_update(reveal_panel_after_vote=True)
    shown = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[0]), "grade": "A"},
        format="json",
    ).json()
    assert "panel" in shown and shown["undo_until"] is None
    services.site_setting_update(reveal_panel_after_vote=False)
    change = expert_client.patch(shown["change_url"], {"grade": "E"}, format="json")
    assert change.status_code == 409 and "final" in change.json()["detail"]
    # A vote cast without the reveal keeps its undo window.
    blind = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[1]), "grade": "B"},
        format="json",
    ).json()
    assert blind["undo_until"] is not None
    again = expert_client.patch(blind["change_url"], {"grade": "C"}, format="json")
    assert again.status_code == 200
