"""Promotion and rollback: every change recorded with who and when. The
automatic rule's paired comparison is tested in test_promotion.py."""

import pytest

from registry import selectors, services
from registry.models import ModelVersion, Snapshot, TrainingRun, VersionEvent


def _version(number: int, emd: float, std: float) -> ModelVersion:
    snapshot, _ = Snapshot.objects.get_or_create(
        sha256=f"{number:064d}",
        defaults=dict(cutoff="2026-01-01T00:00Z", min_votes=1, n_clips=1, n_votes=1),
    )
    run = TrainingRun.objects.create(
        profile="tiny", queue="cpu", snapshot=snapshot, config={"model": {"name": "x"}}
    )
    return ModelVersion.objects.create(
        number=number,
        run=run,
        snapshot=snapshot,
        profile="tiny",
        model_name="clinic",
        emd_mean=emd,
        emd_std=std,
        artifact_path=f"registry/models/run-{run.pk}",
        code_version="test",
    )


@pytest.mark.django_db
def test_the_first_version_is_promoted_automatically():
    v1 = _version(1, 0.050, 0.004)
    assert services.version_auto_decide(version=v1) is True
    assert selectors.version_active() == v1


@pytest.mark.django_db
def test_a_better_cross_validated_emd_alone_does_not_promote():
    """Cross-validated EMDs of two snapshots are not comparable: without the
    paired comparison on the candidate's snapshot (here its manifest is not on
    disk) the candidate waits for an admin, however much lower its EMD. The
    paired rule itself is in test_promotion.py."""
    v1 = _version(1, 0.050, 0.004)
    services.version_auto_decide(version=v1)
    v2 = _version(2, 0.020, 0.004)
    assert services.version_auto_decide(version=v2) is False
    assert selectors.version_active() == v1
    held = VersionEvent.objects.get(version=v2)
    assert held.action == VersionEvent.Action.HELD
    assert held.reason == (
        "no paired comparison with v1: the manifest of snapshot 000000000000 "
        "cannot be read (ManifestError); waiting for an admin"
    )
    assert held.evidence["problem"] and held.evidence["active"] == 1


@pytest.mark.django_db
def test_an_admin_promotes_and_rolls_back_and_both_are_recorded(admin_user):
    v1 = _version(1, 0.050, 0.004)
    services.version_auto_decide(version=v1)
    v2 = _version(2, 0.049, 0.004)
    services.version_auto_decide(version=v2)
    services.model_version_promote(version_id=v2.pk, user=admin_user)
    assert selectors.version_active() == v2
    with pytest.raises(services.VersionStateConflict, match="already active"):
        services.model_version_promote(version_id=v2.pk, user=admin_user)
    services.model_version_rollback(user=admin_user)
    assert selectors.version_active() == v1
    last = VersionEvent.objects.first()
    assert last.action == VersionEvent.Action.ROLLED_BACK
    assert last.by == admin_user and last.previous == v2 and last.at
    assert ModelVersion.objects.filter(is_active=True).count() == 1
    # v1 was the first active version: nothing before it (never back to v2).
    with pytest.raises(services.VersionStateConflict, match="first active version"):
        services.model_version_rollback(user=admin_user)
    assert selectors.version_active() == v1


@pytest.mark.django_db
def test_rollback_walks_back_through_the_activations_never_toggles(admin_user):
    """After a bad v3: rollback gives v2, a second rollback v1 (not v3 again); a
    promotion after that pushes onto the history like any other."""
    versions = [_version(n, 0.05 - 0.01 * n, 0.001) for n in (1, 2, 3)]
    for version in versions:
        services.model_version_promote(version_id=version.pk, user=admin_user)
    v1, v2, v3 = versions
    assert selectors.activation_stack() == [v1.pk, v2.pk, v3.pk]
    services.model_version_rollback(user=admin_user)
    assert selectors.version_active() == v2
    services.model_version_rollback(user=admin_user)
    assert selectors.version_active() == v1
    with pytest.raises(services.VersionStateConflict, match="first active version"):
        services.model_version_rollback(user=admin_user)
    services.model_version_promote(version_id=v3.pk, user=admin_user)
    services.model_version_rollback(user=admin_user)
    assert selectors.version_active() == v1
    # Every activation is kept, with who and why.
    kinds = list(
        VersionEvent.objects.order_by("id").values_list("action", "version__number")
    )
    assert kinds == [
        ("promoted", 1),
        ("promoted", 2),
        ("promoted", 3),
        ("rolled_back", 2),
        ("rolled_back", 1),
        ("promoted", 3),
        ("rolled_back", 1),
    ]


@pytest.mark.django_db
def test_rollback_without_an_earlier_version_says_so(admin_user):
    with pytest.raises(services.VersionStateConflict, match="nothing to roll back"):
        services.model_version_rollback(user=admin_user)
    v1 = _version(1, 0.05, 0.01)
    services.version_auto_decide(version=v1)
    with pytest.raises(services.VersionStateConflict, match="first active version"):
        services.model_version_rollback(user=admin_user)


@pytest.mark.django_db
def test_promotion_writes_the_queue_priorities_from_predictions_and_votes(settings):
    from annotation import services as annotation_services
    from annotation.models import ClipModelPriority
    from tests.factories import ClipFactory, ExpertFactory

    settings.VOTE_BUDGET_CI_WIDTH = 0.3  # the queue reads them only then
    settings.VOTE_BUDGET_MODEL_PRIORITY = "disagreement"
    voted, unvoted = ClipFactory.create_batch(2)
    experts = ExpertFactory.create_batch(2)
    annotation_services.votes_bulk_create_simulated(
        votes=[(experts[0].pk, voted.pk, "A"), (experts[1].pk, voted.pk, "A")],
        seconds_spent=3.0,
    )
    v1 = _version(1, 0.05, 0.01)
    services.predictions_store(
        version=v1,
        rows=[(voted.pk, [0, 0, 1.0, 0, 0], 0), (unvoted.pk, [0.2] * 5, None)],
        source="oof",
    )
    services.version_auto_decide(version=v1)
    rows = {p.clip_id: p for p in ClipModelPriority.objects.all()}
    # Panel all A, model all C: CDFs (1,1,1,1,1) vs (0,0,1,1,1): EMD = 2/5.
    assert rows[voted.pk].disagreement == pytest.approx(0.4)
    assert rows[voted.pk].entropy == pytest.approx(0.0, abs=1e-9)
    # No votes yet: no disagreement; a uniform prediction has entropy 1.
    assert rows[unvoted.pk].disagreement == 0.0
    assert rows[unvoted.pk].entropy == pytest.approx(1.0)
    assert rows[voted.pk].version_number == 1
