"""``python manage.py demo_data``: load the synthetic demo (clips, panel, logins)."""

from django.core.management.base import BaseCommand, CommandError

from annotation.demo import demo_data_load
from annotation.demo_panel import MIN_REPEATS, REPEAT_SHARE


class Command(BaseCommand):
    help = (
        "Create the embedded demo: synthetic phase-contrast clips of single sperm "
        "(16 frames, 150x150 px, 15 fps) with a latent quality, a simulated panel "
        "of experts (SIM-01..) whose votes fill most clips, each of whom graded "
        "some clips again as hidden repeats, and two logins: expert "
        "'expert' / 'grade-sperm-demo' and admin 'admin' / 'admin-demo-pass'. "
        "Everything is marked synthetic. Running it again adds only what is "
        "missing; --reset deletes the synthetic data first and rebuilds it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--clips", type=int, default=60, help="number of clips (default 60)"
        )
        parser.add_argument(
            "--experts",
            type=int,
            default=40,
            help="number of simulated experts (default 40)",
        )
        parser.add_argument(
            "--patients",
            type=int,
            default=6,
            help="number of synthetic patients SYN-P01.. (default 6)",
        )
        parser.add_argument(
            "--full-share",
            type=float,
            default=0.85,
            help="share of clips every simulated expert votes on; the rest get "
            "some votes and wait for you (default 0.85)",
        )
        parser.add_argument(
            "--repeat-share",
            type=float,
            default=REPEAT_SHARE,
            help="share of each simulated expert's votes given again as hidden "
            f"repeats, at least {MIN_REPEATS} each, for the test-retest kappa on the "
            "dashboards "
            f"(0 to 0.5, default {REPEAT_SHARE:g})",
        )
        parser.add_argument(
            "--recordings",
            type=int,
            default=0,
            help="also render this many full-field synthetic recordings "
            "(1392x976, 48 frames) waiting for preprocessing (default 0)",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="random seed (default 0)"
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete all synthetic clips, patients, votes and simulated experts "
            "first, then rebuild (real data is never touched)",
        )

    def handle(self, *args, **options):
        for name in ("clips", "experts", "recordings"):
            if options[name] < 0:
                raise CommandError(f"--{name} must be 0 or more.")
        if options["patients"] < 1:
            raise CommandError("--patients must be at least 1.")
        if not 0.0 <= options["full_share"] <= 1.0:
            raise CommandError("--full-share must lie between 0 and 1.")
        if not 0.0 <= options["repeat_share"] <= 0.5:
            raise CommandError("--repeat-share must lie between 0 and 0.5.")
        summary = demo_data_load(
            n_clips=options["clips"],
            n_experts=options["experts"],
            seed=options["seed"],
            n_patients=options["patients"],
            full_share=options["full_share"],
            repeat_share=options["repeat_share"],
            n_recordings=options["recordings"],
            reset=options["reset"],
            log=self.stdout.write,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Synthetic demo ready: {summary.clips_total} clips "
                f"({summary.clips_created} new) of {summary.patients} patients; "
                f"{summary.simulated_experts} simulated experts; "
                f"{summary.votes_total} votes ({summary.votes_created} new) and "
                f"{summary.repeats_total} hidden repeats "
                f"({summary.repeats_created} new); "
                f"{summary.full_clips} clips fully voted, the rest await votes."
            )
        )
        if summary.recordings_total:
            self.stdout.write(
                f"  {summary.recordings_total} synthetic recordings "
                f"({summary.recordings_created} new) await preprocessing."
            )
        for role, username, password in summary.logins:
            self.stdout.write(f"  {role} login: {username} / {password}")
