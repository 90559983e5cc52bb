"""Export and import jobs: progress on the job, cancel in every state (a queued
job ends at once, a running one stops at its next report and leaves nothing)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Clip, Job, Vote
from annotation.services import job_cancel, job_progress
from exports.bundle import bundle_write
from exports.services import export_path_for, import_path_for
from tests.factories import AdminFactory, ExpertFactory
from tests.registry.conftest import make_voted_clips
from workers.export import dataset_export_run, dataset_import_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_a_queued_job_is_cancelled_at_once_and_its_message_then_does_nothing():
    job = Job.objects.create(kind="export")
    job_cancel(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and "before a worker took it" in (
        job.error_message
    )
    assert dataset_export_run(job_id=job.pk) == {"skipped": True}
    assert not export_path_for(job).exists()
    done = Job.objects.create(kind="export", status=Job.Status.DONE)
    assert job_cancel(job_id=done.pk).status == Job.Status.DONE  # left as it was


def test_a_running_export_stops_at_its_next_report_and_keeps_no_file(monkeypatch):
    make_voted_clips(n_clips=6, n_patients=3, n_experts=3)
    job = Job.objects.create(kind="export", status=Job.Status.RUNNING)
    import workers.export as export

    monkeypatch.setattr(export, "PROGRESS_SECONDS", 0.0)  # report every step
    real = export.job_progress

    def cancel_midway(*, job_id, step, share):
        if step == "votes":
            job_cancel(job_id=job_id)
        return real(job_id=job_id, step=step, share=share)

    monkeypatch.setattr(export, "job_progress", cancel_midway)
    assert dataset_export_run(job_id=job.pk) == {"cancelled": True}
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert job.error_message == "cancelled while votes; no file was kept"
    final = export_path_for(job)
    assert not final.exists() and not final.with_suffix(".zip.partial").exists()


def test_a_running_import_reports_progress_and_a_cancel_rolls_it_back(
    tmp_path, monkeypatch
):
    make_voted_clips(n_clips=6, n_patients=3, n_experts=3)
    bundle = tmp_path / "export.zip"
    bundle_write(bundle)
    clips_before, votes_before = Clip.objects.count(), Vote.objects.count()
    job = Job.objects.create(kind="import", status=Job.Status.RUNNING)
    upload = import_path_for(job)
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(bundle.read_bytes())
    steps = []
    import workers.export as export

    def cancel_at_votes(*, job_id, step, share):
        steps.append((step, share))
        if "votes" in step:
            job_cancel(job_id=job_id)
        return job_progress(job_id=job_id, step=step, share=share)

    monkeypatch.setattr(export, "job_progress", cancel_at_votes)
    assert dataset_import_run(job_id=job.pk) == {"cancelled": True}
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert "nothing was imported" in job.error_message
    assert (Clip.objects.count(), Vote.objects.count()) == (
        clips_before,
        votes_before,
    )
    assert steps[0] == ("verifying checksums", 0.02)
    assert any(step.startswith("storing clips") for step, _ in steps)
    assert not upload.exists()


def test_the_page_cancels_a_queued_export_and_is_for_admins_only():
    job = Job.objects.create(kind="export")
    url = reverse("export_job_cancel", args=[job.pk])
    expert = Client()
    expert.force_login(ExpertFactory())
    assert expert.post(url).status_code == 403
    admin = Client(enforce_csrf_checks=True)
    admin.force_login(AdminFactory())
    assert admin.post(url).status_code == 403  # no CSRF token
    admin = Client()
    admin.force_login(AdminFactory())
    page = admin.get(reverse("export_home")).content.decode()
    assert f'data-cancel-job="{job.pk}"' in page
    response = admin.post(url, follow=True)
    assert f"Job {job.pk} cancelled." in response.content.decode()
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    other = Job.objects.create(kind="panel_snapshot")
    assert admin.post(reverse("export_job_cancel", args=[other.pk])).status_code == 404
