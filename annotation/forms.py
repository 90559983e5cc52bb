"""Forms of the recording pages: upload, target sperm clicked on the first frame."""

from __future__ import annotations

import json
import math

from django import forms

from annotation.models import Recording
from annotation.services.recordings import (
    MAX_CLIPS_PER_RECORDING,
    MAX_TARGETS,
    VIDEO_EXTENSIONS,
)


class RecordingUploadForm(forms.Form):
    patient_code = forms.CharField(
        max_length=64,
        label="Patient code",
        help_text="Pseudonymous code, never a name (e.g. P-0042).",
    )
    file = forms.FileField(
        label="Recording",
        help_text="MP4 or AVI from the microscope camera.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(VIDEO_EXTENSIONS)}),
    )
    mode = forms.ChoiceField(
        choices=[
            (Recording.Mode.AUTO, "Automatic: cut clips of the best-tracked sperm"),
            (Recording.Mode.MANUAL, "Manual: I click the target sperm on frame 1"),
        ],
        initial=Recording.Mode.AUTO,
        widget=forms.RadioSelect,
    )
    max_clips = forms.IntegerField(
        label="Clips per recording (automatic mode)",
        min_value=1,
        max_value=MAX_CLIPS_PER_RECORDING,
        initial=10,
    )
    um_per_px = forms.FloatField(
        label="Micrometres per pixel",
        required=False,
        min_value=0.001,
        max_value=100,
        help_text="From the microscope calibration; speeds are in px/s without it.",
    )
    fps = forms.FloatField(
        label="Frame rate override (fps)",
        required=False,
        min_value=0.1,
        max_value=10_000,
        help_text="Leave empty to use the rate stored in the file.",
    )
    microscope_notes = forms.CharField(
        label="Microscope notes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_patient_code(self) -> str:
        code = self.cleaned_data["patient_code"].strip()
        if not code:
            raise forms.ValidationError("Give the patient's pseudonymous code.")
        return code


class RecordingTargetsForm(forms.Form):
    """Points clicked on the first frame, as JSON ``[[x, y], ...]`` in frame px."""

    targets = forms.CharField(widget=forms.HiddenInput)

    def clean_targets(self) -> list[list[float]]:
        raw = self.cleaned_data["targets"]

        def no_constants(name: str):
            raise ValueError(f"{name} is not a coordinate")

        try:
            # NaN and Infinity are not coordinates; a huge exponent parses as inf
            points = json.loads(raw, parse_constant=no_constants)
        except (ValueError, RecursionError):
            raise forms.ValidationError(
                "The targets are not valid JSON: send a list of [x, y] points "
                "(NaN and Infinity are not coordinates)."
            ) from None
        if not isinstance(points, list) or not all(
            isinstance(p, list)
            and len(p) == 2
            and all(
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and math.isfinite(v)
                for v in p
            )
            for p in points
        ):
            raise forms.ValidationError(
                "Targets must be a list of [x, y] points with finite coordinates; "
                "these are not."
            )
        if not points:
            raise forms.ValidationError("Click at least one sperm on the first frame.")
        if len(points) > MAX_TARGETS:
            raise forms.ValidationError(f"Choose at most {MAX_TARGETS} sperm.")
        return [[float(x), float(y)] for x, y in points]
