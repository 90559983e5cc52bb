"""Render synthetic full-field recordings and turn them into clips (for the demo)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workers.demo_recordings import demo_recordings_process


class Command(BaseCommand):
    help = (
        "Render synthetic full-field recordings (1392x976 px, 15 fps, sperm of "
        "varied motility and shape, debris, noise, focus drift), store them as "
        "uploaded recordings and preprocess them here: detection, tracking, WHO "
        "kinematics and clip cutting, as the Celery worker does. The clips join "
        "the grading queue. Recordings already processed are kept, so running it "
        "again is quick."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--recordings", type=int, default=1, help="how many (default 1)"
        )
        parser.add_argument(
            "--frames", type=int, default=48, help="frames each (default 48)"
        )
        parser.add_argument(
            "--sperm", type=int, default=50, help="sperm in the field (default 50)"
        )
        parser.add_argument(
            "--max-clips",
            type=int,
            default=10,
            help="clips cut per recording (default 10)",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="random seed (default 0)"
        )

    def handle(self, *args, **options) -> None:
        if options["recordings"] < 0:
            raise CommandError("--recordings must be 0 or more.")
        if options["frames"] < 16:
            raise CommandError("--frames must be at least 16 (one clip's length).")
        if options["sperm"] < 1 or options["max_clips"] < 1:
            raise CommandError("--sperm and --max-clips must be at least 1.")
        recordings = demo_recordings_process(
            n_recordings=options["recordings"],
            seed=options["seed"],
            n_sperm=options["sperm"],
            n_frames=options["frames"],
            max_clips=options["max_clips"],
            log=self.stdout.write,
        )
        for recording in recordings:
            recording.refresh_from_db()
            clips = recording.clips.filter(is_active=True).count()
            line = (
                f"  recording #{recording.pk} {recording.original_name}: "
                f"{recording.status}, {clips} clips"
            )
            if recording.error_message:
                line += f" ({recording.error_message})"
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(recordings)} synthetic recordings; see /recordings/ as admin."
            )
        )
