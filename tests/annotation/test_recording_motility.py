"""The recording's motility on its page and in the API (operators and admins)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from annotation.models import Patient, Recording
from tests.annotation.conftest import session_client
from tests.factories import AdminFactory, ExpertFactory
from video.kinematics import kinematics_compute
from video.motility import motility_summary

pytestmark = pytest.mark.django_db


def _summary() -> dict:
    still = kinematics_compute(track=[[0.0, 0.0]] * 16, fps=15.0, um_per_px=0.5)
    fast = kinematics_compute(
        track=[[4.0 * t, 0.0] for t in range(16)], fps=15.0, um_per_px=0.5
    )  # 4 px per frame at 15 fps and 0.5 µm/px: 30 µm/s, straight
    return motility_summary([fast, fast, still], n_short=2, um_per_px=0.5)


@pytest.fixture
def recording():
    patient = Patient.objects.create(code="P-MOT")
    return Recording.objects.create(
        patient=patient, status=Recording.Status.DONE, motility=_summary()
    )


def test_the_api_gives_the_motility_to_operators_and_admins_only(
    recording, django_user_model
):
    url = f"/api/recordings/{recording.pk}/motility/"
    assert session_client(ExpertFactory()).get(url).status_code == 403
    operator = django_user_model.objects.create_user("op", password="op-pass-123")
    operator.groups.add(Group.objects.get_or_create(name="operators")[0])
    for user in (operator, AdminFactory()):
        body = session_client(user).get(url).json()
        assert body["recording"] == recording.pk and body["n_tracks"] == 3
        assert body["counts"] == {"progressive": 2, "non-progressive": 0, "immotile": 1}
        assert body["percent"]["progressive"] == pytest.approx(66.7)
        assert body["mean"]["vcl"] == pytest.approx(20.0)  # (30 + 30 + 0) / 3
        assert body["n_short"] == 2 and body["unit"] == "um/s"


def test_a_recording_not_processed_yet_has_no_motility(recording):
    recording.motility = {}
    recording.save()
    answer = session_client(AdminFactory()).get(
        f"/api/recordings/{recording.pk}/motility/"
    )
    assert answer.status_code == 404 and "no motility yet" in answer.json()["detail"]
    missing = session_client(AdminFactory()).get("/api/recordings/999999/motility/")
    assert missing.status_code == 404


def test_the_recording_page_shows_the_shares_and_the_histogram_data(client, recording):
    client.force_login(AdminFactory())
    html = client.get(f"/recordings/{recording.pk}/").content.decode()
    assert 'id="motility-table"' in html
    assert (
        '<td class="num" data-field="progressive">2</td><td class="num">66.7</td>'
        in html
    )
    assert 'id="motility-data"' in html and "plotly/plotly.min.js" in html
