"""Clip review: clips cut from uploaded recordings wait in pending review, only
approved clips reach experts, rejected ones are kept with their reason."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile

from annotation import errors, selectors, services
from annotation.models import Clip, ClipLease, SiteSetting
from tests.annotation.conftest import session_client
from tests.factories import (
    AdminFactory,
    ClipFactory,
    ExpertFactory,
    VoteFactory,
    clip_spec,
)
from tests.workers import recording_files as rf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REPEAT_SHARE = 0.0


def _recording(*, synthetic: bool = False, seed: int = 0):
    patient = services.patient_get_or_create(code="P-R")
    recording = services.recording_create_from_upload(
        file=ContentFile(rf.synthetic_mp4(seed), name="field.mp4"), patient=patient
    )
    recording.is_synthetic = synthetic
    recording.save(update_fields=["is_synthetic"])
    return recording


def _offered(expert) -> set[int]:
    return {a.clip.pk for a in selectors.clip_next_for_expert(expert=expert, count=5)}


def test_clips_of_an_uploaded_recording_wait_for_review_and_never_reach_experts():
    recording = _recording()
    cut = services.clips_replace_for_recording(
        recording=recording, clips=[clip_spec(1), clip_spec(2)]
    )
    assert {c.review for c in cut} == {"pending"}
    expert = ExpertFactory()
    assert _offered(expert) == set()
    assert selectors.expert_progress(expert=expert) == (0, 0)

    admin = AdminFactory()
    services.clip_review(clip_id=cut[0].pk, decision="approve", user=admin)
    services.clip_review(
        clip_id=cut[1].pk, decision="reject", reason="not a sperm", user=admin
    )
    ClipLease.objects.all().delete()
    assert _offered(expert) == {cut[0].pk}
    assert selectors.expert_progress(expert=expert) == (0, 1)
    rejected = Clip.objects.get(pk=cut[1].pk)
    assert (rejected.review, rejected.review_reason) == ("rejected", "not a sperm")
    assert rejected.reviewed_by == admin and rejected.reviewed_at is not None


def test_synthetic_recordings_and_review_switched_off_give_approved_clips():
    (demo,) = services.clips_replace_for_recording(
        recording=_recording(synthetic=True), clips=[clip_spec(1)]
    )
    assert demo.review == "approved"
    SiteSetting.objects.update_or_create(pk=1, defaults={"review_new_clips": False})
    recording = _recording(seed=1)
    (real,) = services.clips_replace_for_recording(
        recording=recording, clips=[clip_spec(2)]
    )
    assert real.review == "approved"


def test_a_rejection_needs_a_reason_and_drops_live_leases():
    clip = ClipFactory(review="approved")
    expert = ExpertFactory()
    assert _offered(expert) == {clip.pk}
    admin = AdminFactory()
    Clip.objects.filter(pk=clip.pk).update(review="pending")
    with pytest.raises(errors.InvalidInput):
        services.clip_review(clip_id=clip.pk, decision="reject", reason=" ", user=admin)
    services.clip_review(
        clip_id=clip.pk, decision="reject", reason="blurred", user=admin
    )
    assert not ClipLease.objects.filter(clip=clip).exists()


def test_a_graded_clip_keeps_its_review_withdraw_it_instead():
    clip = ClipFactory()
    VoteFactory(clip=clip, expert=ExpertFactory())
    with pytest.raises(errors.ReviewClosed):
        services.clip_review(
            clip_id=clip.pk, decision="reject", reason="late", user=AdminFactory()
        )
    assert Clip.objects.get(pk=clip.pk).review == "approved"


def _operator(django_user_model):
    user = django_user_model.objects.create_user("op", password="op-pass-123")
    user.groups.add(Group.objects.get_or_create(name="operators")[0])
    return user


def test_review_api_per_role(django_user_model):
    clip = ClipFactory(review="pending")
    url = f"/api/clips/{clip.pk}/review/"
    body = {"decision": "approve"}
    assert session_client().post(url, body, format="json").status_code == 401
    assert (
        session_client(ExpertFactory()).post(url, body, format="json").status_code
        == 403
    )
    operator = session_client(_operator(django_user_model))
    bad = operator.post(url, {"decision": "maybe"}, format="json")
    assert bad.status_code == 400 and "decision" in bad.json()["detail"]
    no_reason = operator.post(url, {"decision": "reject"}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["detail"]
    missing = operator.post("/api/clips/999999/review/", body, format="json")
    assert missing.status_code == 404
    done = operator.post(url, body, format="json")
    assert done.status_code == 200
    assert done.json()["review"] == "approved" and done.json()["reviewed_by"] == "op"


def test_review_page_lists_pending_clips_for_operators_only(client, django_user_model):
    pending = ClipFactory(review="pending")
    approved = ClipFactory()
    rejected = ClipFactory(review="rejected", review_reason="two cells overlap")
    client.force_login(ExpertFactory())
    assert client.get("/recordings/review/").status_code == 403
    client.force_login(_operator(django_user_model))
    page = client.get("/recordings/review/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-clip="{pending.pk}"' in html
    assert f'data-clip="{approved.pk}"' not in html
    assert f'data-clip="{rejected.pk}"' not in html and "two cells overlap" in html
