"""Hidden repeats are indistinguishable from first showings in everything the
expert gets: the next-clip answer, the vote answer and its change URL, the
progress counter, the expert's own vote list and vote detail, error messages.

The expert grades a whole queue through the API with half of the slots drawn as
repeats; the server's own tables say afterwards which presentations were
repeats, and every expert-facing answer is compared between the two kinds."""

import random
import re
from types import SimpleNamespace

import pytest

from annotation.models import RepeatVote, Vote
from annotation.selectors import queue
from tests.annotation.conftest import session_client
from tests.factories import ClipFactory, clip_id_of

pytestmark = pytest.mark.django_db

HANDLE = re.compile(r"^[a-z2-7]{26}$")


def _shape(value):
    """A value's structure: keys and JSON types, not the values themselves."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


@pytest.fixture
def graded_queue(expert, settings, monkeypatch):
    # The queue's dice, seeded: an unseeded run drew fewer than 3 repeats now
    # and then, and the comparison below needs some of each kind.
    dice = random.Random(20261202)
    monkeypatch.setattr(
        queue, "random", SimpleNamespace(Random=lambda: dice, random=dice.random)
    )
    settings.REPEAT_SHARE = 0.5
    settings.REPEAT_MIN_GAP_CLIPS = 1
    settings.REPEAT_MIN_GAP_HOURS = 0
    settings.VOTE_UNDO_SECONDS = 3600
    clips = ClipFactory.create_batch(12)
    client = session_client(expert)
    shown, answers, progress_seen = [], [], []
    for step in range(60):
        body = client.post("/api/clips/next/?count=1&tab=t1").json()
        progress_seen.append(body["progress"])
        if not body["clips"]:
            break
        offered = body["clips"][0]
        answer = client.post(
            "/api/votes/",
            {"clip": offered["id"], "grade": "ABCDE"[step % 5]},
            format="json",
        )
        assert answer.status_code == 201, answer.content
        shown.append(offered)
        answers.append(answer.json())
    repeats = set(
        RepeatVote.objects.filter(expert=expert).values_list("clip_id", flat=True)
    )
    firsts = set(Vote.objects.filter(expert=expert).values_list("clip_id", flat=True))
    assert firsts == {c.pk for c in clips}
    # The server's truth, never shown to the expert: which showing was a repeat.
    kinds = []
    seen = set()
    for offered in shown:
        clip = clip_id_of(offered["id"])
        kinds.append(clip in seen)
        seen.add(clip)
    assert sum(kinds) == len(repeats) >= 3, "too few repeats to compare"
    return {
        "client": client,
        "shown": shown,
        "answers": answers,
        "kinds": kinds,
        "progress": progress_seen,
    }


def _by_kind(items, kinds):
    return (
        [item for item, repeat in zip(items, kinds, strict=True) if repeat],
        [item for item, repeat in zip(items, kinds, strict=True) if not repeat],
    )


def test_next_clip_answers_of_repeats_and_first_showings_look_alike(graded_queue):
    shown, kinds = graded_queue["shown"], graded_queue["kinds"]
    repeats, firsts = _by_kind(shown, kinds)
    assert {str(_shape(c)) for c in repeats} == {str(_shape(c)) for c in firsts}
    # Every showing has its own handle (a repeat is not the earlier clip's id),
    # and no handle or URL carries a clip id.
    handles = [c["id"] for c in shown]
    assert len(set(handles)) == len(handles)
    assert all(HANDLE.match(h) for h in handles)
    urls = [c["video_url"] for c in shown]
    assert len(set(urls)) == len(urls)
    for clip in shown:
        assert clip["video_url"] == f"/media/shown/{clip['id']}/video.mp4"


def test_vote_answers_and_the_progress_counter_look_alike(graded_queue):
    answers, kinds = graded_queue["answers"], graded_queue["kinds"]
    repeats, firsts = _by_kind(answers, kinds)
    assert {str(_shape(a)) for a in repeats} == {str(_shape(a)) for a in firsts}
    for answer, offered in zip(answers, graded_queue["shown"], strict=True):
        assert answer["id"] == answer["clip"] == offered["id"]
        assert answer["change_url"] == f"/api/votes/{offered['id']}/"
    # graded grows by one after every vote, repeat or not; the total never moves
    graded = [a["progress"]["graded"] for a in answers]
    assert graded == list(range(1, len(answers) + 1))
    totals = {a["progress"]["total"] for a in answers}
    totals |= {p["total"] for p in graded_queue["progress"]}
    assert totals == {24}  # 12 first showings + 12 planned repeats at share 0.5


def test_the_experts_own_votes_list_every_showing_alike(graded_queue):
    client, answers = graded_queue["client"], graded_queue["answers"]
    listed = client.get("/api/votes/?limit=100").json()
    assert listed["count"] == len(answers)
    rows = {row["id"]: row for row in listed["results"]}
    assert set(rows) == {a["id"] for a in answers}
    ordered = [rows[a["id"]] for a in answers]
    repeats, firsts = _by_kind(ordered, graded_queue["kinds"])
    assert {str(_shape(r)) for r in repeats} == {str(_shape(r)) for r in firsts}
    for row, answer in zip(ordered, answers, strict=True):
        assert row["grade"] == answer["grade"] and row["clip"] == answer["id"]
        assert row["change_url"] == answer["change_url"]
        detail = client.get(answer["change_url"])
        assert detail.status_code == 200 and detail.json() == row


def test_changes_and_refusals_read_the_same_for_repeats(graded_queue):
    client, answers = graded_queue["client"], graded_queue["answers"]
    kinds = graded_queue["kinds"]
    changed = [
        client.patch(a["change_url"], {"grade": "C"}, format="json") for a in answers
    ]
    assert {c.status_code for c in changed} == {200}
    repeats, firsts = _by_kind([c.json() for c in changed], kinds)
    assert {str(_shape(a)) for a in repeats} == {str(_shape(a)) for a in firsts}
    # Sending a vote again (an offline retry) is refused in the same words.
    again = [
        client.post("/api/votes/", {"clip": a["id"], "grade": "B"}, format="json")
        for a in answers
    ]
    assert {r.status_code for r in again} == {409}
    assert len({r.json()["detail"] for r in again}) == 1


def test_a_retried_first_vote_never_becomes_the_repeats_grade(expert, settings):
    """The old code took any send for a clip leased as a repeat as the repeat's
    vote: a retried first vote arriving after the repeat was handed out landed as
    the repeat's grade. The handle says which showing a vote is for."""
    settings.REPEAT_SHARE = 1.0
    settings.REPEAT_MIN_GAP_CLIPS = 1
    settings.REPEAT_MIN_GAP_HOURS = 0
    ClipFactory.create_batch(2)
    client = session_client(expert)
    settings.REPEAT_SHARE = 0.0
    first = client.post("/api/clips/next/?count=1").json()["clips"][0]
    body = {"clip": first["id"], "grade": "A"}
    assert client.post("/api/votes/", body, format="json").status_code == 201
    second = client.post("/api/clips/next/?count=1").json()["clips"][0]
    body2 = {"clip": second["id"], "grade": "B"}
    assert client.post("/api/votes/", body2, format="json").status_code == 201
    settings.REPEAT_SHARE = 1.0
    repeat = client.post("/api/clips/next/?count=1").json()["clips"][0]
    assert repeat["id"] not in (first["id"], second["id"])
    retry = client.post("/api/votes/", body, format="json")  # the first vote again
    retry2 = client.post("/api/votes/", body2, format="json")
    assert retry.status_code == retry2.status_code == 409
    assert not RepeatVote.objects.exists()
    answer = client.post(
        "/api/votes/", {"clip": repeat["id"], "grade": "E"}, format="json"
    )
    assert answer.status_code == 201
    assert list(RepeatVote.objects.values_list("grade", flat=True)) == ["E"]


def test_a_handle_is_the_experts_own(expert, settings):
    from tests.factories import ExpertFactory

    ClipFactory.create_batch(2)
    mine = session_client(expert).post("/api/clips/next/?count=1").json()["clips"][0]
    other = session_client(ExpertFactory())
    response = other.post(
        "/api/votes/", {"clip": mine["id"], "grade": "A"}, format="json"
    )
    assert response.status_code == 404
    assert other.get(mine["video_url"]).status_code == 404
    # one character changed: no clip at all, not a neighbour's
    forged = mine["id"][:-2] + ("a" if mine["id"][-2] != "a" else "b") + mine["id"][-1]
    response = session_client(expert).post(
        "/api/votes/", {"clip": forged, "grade": "A"}, format="json"
    )
    assert response.status_code == 404 and not Vote.objects.exists()


def test_a_repeat_is_served_as_a_fresh_encoding_of_the_same_frames(
    expert, settings, tmp_path
):
    """Byte-equal files would tell a repeat from a first showing: the repeat's
    handle serves the same frames encoded afresh."""
    import io as _io

    import av

    from annotation import services
    from annotation.serializers import presentation_video_url
    from tests.browser.helpers import stored_clip
    from tests.factories import handle, offer

    settings.MEDIA_ROOT = tmp_path / "media"
    patient = services.patient_get_or_create(code="PAT-REPEAT")
    clip = stored_clip(patient, seed=3, track=[[0.0, 0.0]] * 16)
    offer(expert, [clip])
    services.vote_create(expert=expert, clip=clip, grade="C", offered_only=True)
    client = session_client(expert)
    first = client.get(presentation_video_url(handle(expert, clip)))
    repeat = client.get(presentation_video_url(handle(expert, clip, repeat=True)))
    assert first.status_code == repeat.status_code == 200
    first_bytes = b"".join(first.streaming_content)
    repeat_bytes = b"".join(repeat.streaming_content)
    assert first_bytes != repeat_bytes

    def frames(data: bytes):
        with av.open(_io.BytesIO(data)) as container:
            return [f.to_ndarray(format="gray") for f in container.decode(video=0)]

    a, b = frames(first_bytes), frames(repeat_bytes)
    assert len(a) == len(b) == 16
    # The same pictures: encodings differ by a few grey levels at most.
    assert max(abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b)) < 3
