"""Start a training run from the command line (queued, or here with --sync)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import DomainError
from registry import selectors, services
from registry.models import TrainingRun
from registry.profiles import OVERRIDE_KEYS, PROFILES


class Command(BaseCommand):
    help = (
        "Start a training run: snapshot the panel's votes, cross-validate the "
        "profile's model fold by fold, fit the final model, register the version "
        "(promoted when it beats the active one by more than the fold std) and "
        "predict every clip. Without --sync the run is queued for the Celery "
        "workers (watch it on /registry/); with --sync it runs here, in this "
        f"process. Profiles: {', '.join(PROFILES)}."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--profile", default="clinic", choices=sorted(PROFILES))
        parser.add_argument(
            "--queue", choices=["cpu", "gpu"], help="default: profile's"
        )
        for name in OVERRIDE_KEYS:
            kind = str if name == "loss" else int
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind)
        parser.add_argument(
            "--sync", action="store_true", help="run here instead of on a worker"
        )
        parser.add_argument(
            "--unless-version",
            action="store_true",
            help="do nothing when a version exists or a run is queued or running "
            "(the demo's launch)",
        )
        parser.add_argument(
            "--trigger",
            default=TrainingRun.Trigger.MANUAL,
            choices=TrainingRun.Trigger.values,
        )

    def handle(self, *args, **options) -> None:
        if options["unless_version"] and (
            selectors.version_list().exists() or selectors.runs_active().exists()
        ):
            self.stdout.write("A model version exists or a run is under way: skipped.")
            return
        overrides = {k: options[k] for k in OVERRIDE_KEYS if options.get(k) is not None}
        from config.celery import app, ensure_broker_folders

        ensure_broker_folders()
        if options["sync"]:
            app.conf.task_always_eager = True
        try:
            run = services.training_run_create(
                profile=options["profile"],
                queue=options["queue"],
                overrides=overrides,
                trigger=options["trigger"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        run.refresh_from_db()
        if not options["sync"]:
            self.stdout.write(
                f"Run {run.pk} queued on the {run.queue} queue ({run.profile}); "
                f"follow it at /registry/runs/{run.pk}/"
            )
            return
        if run.status != "done":
            raise CommandError(f"run {run.pk} {run.status}: {run.error_message}")
        version = run.version
        self.stdout.write(
            f"Run {run.pk} done: v{version.number}, EMD {version.emd_mean:.4f} ± "
            f"{version.emd_std:.4f} (mean distribution {version.baseline_emd:.4f}); "
            f"{'active' if version.is_active else 'not promoted'}"
        )
