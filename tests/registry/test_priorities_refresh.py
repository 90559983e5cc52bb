"""The queue's model priorities are written only while the queue reads them (the
vote budget on with VOTE_BUDGET_MODEL_PRIORITY), and then only for clips whose
figures changed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import ClipModelPriority
from registry import services
from tests.factories import ClipFactory, ExpertFactory
from tests.registry.test_versions import _version

pytestmark = pytest.mark.django_db


@pytest.fixture
def predicted():
    """An active version with predictions for three clips, two of them voted."""
    clips = ClipFactory.create_batch(3)
    experts = ExpertFactory.create_batch(2)
    annotation_services.votes_bulk_create_simulated(
        votes=[(experts[0].pk, clips[0].pk, "A"), (experts[0].pk, clips[1].pk, "B")],
        seconds_spent=3.0,
    )
    version = _version(1, 0.05, 0.01)
    services.predictions_store(
        version=version,
        rows=[
            (clips[0].pk, [0, 0, 1.0, 0, 0], None),
            (clips[1].pk, [0.1, 0.6, 0.3, 0, 0], None),
            (clips[2].pk, [0.2] * 5, None),
        ],
        source="final",
    )
    version.is_active = True
    version.save(update_fields=["is_active"])
    return version, clips, experts


@pytest.fixture
def budget_on(settings):
    settings.VOTE_BUDGET_CI_WIDTH = 0.3
    settings.VOTE_BUDGET_MODEL_PRIORITY = "disagreement"


def _age_rows():
    """Date every row back, so a rewrite shows in ``updated_at``."""
    long_ago = timezone.now() - timedelta(days=1)
    ClipModelPriority.objects.update(updated_at=long_ago)
    return long_ago


@pytest.mark.parametrize(
    ("ci_width", "model_priority"),
    [(0.0, "disagreement"), (0.3, "off"), (0.0, "off")],
)
def test_with_the_model_priority_budget_off_no_priority_is_written(
    predicted, settings, ci_width, model_priority, django_assert_num_queries
):
    version, _, _ = predicted
    settings.VOTE_BUDGET_CI_WIDTH = ci_width
    settings.VOTE_BUDGET_MODEL_PRIORITY = model_priority
    with django_assert_num_queries(0):
        assert services.clip_priorities_refresh(version=version) == 0
    assert not ClipModelPriority.objects.exists()


def test_an_unchanged_second_refresh_writes_nothing(predicted, budget_on):
    version, clips, _ = predicted
    assert services.clip_priorities_refresh(version=version) == 3
    long_ago = _age_rows()
    assert services.clip_priorities_refresh(version=version) == 0
    assert set(ClipModelPriority.objects.values_list("updated_at", flat=True)) == {
        long_ago
    }
    assert ClipModelPriority.objects.count() == 3


def test_a_new_vote_rewrites_only_that_clips_row(predicted, budget_on):
    version, clips, experts = predicted
    services.clip_priorities_refresh(version=version)
    before = {p.clip_id: p.disagreement for p in ClipModelPriority.objects.all()}
    long_ago = _age_rows()
    annotation_services.votes_bulk_create_simulated(
        votes=[(experts[1].pk, clips[1].pk, "E")], seconds_spent=3.0
    )
    assert services.clip_priorities_refresh(version=version) == 1
    rows = {p.clip_id: p for p in ClipModelPriority.objects.all()}
    assert rows[clips[1].pk].updated_at > long_ago
    assert rows[clips[1].pk].disagreement != before[clips[1].pk]
    for clip in (clips[0], clips[2]):
        assert rows[clip.pk].updated_at == long_ago
        assert rows[clip.pk].disagreement == before[clip.pk]


def test_rows_of_clips_no_longer_predicted_or_of_another_version_are_replaced(
    predicted, budget_on
):
    version, clips, _ = predicted
    gone = ClipFactory()
    annotation_services.clip_model_priorities_replace(
        rows=[(gone.pk, 0.5, 0.5), (clips[0].pk, 0.4, 0.0)], version_number=7
    )
    assert services.clip_priorities_refresh(version=version) == 4
    rows = {p.clip_id: p for p in ClipModelPriority.objects.all()}
    assert set(rows) == {c.pk for c in clips}
    assert {p.version_number for p in rows.values()} == {1}
    assert rows[clips[0].pk].disagreement == pytest.approx(0.4)
