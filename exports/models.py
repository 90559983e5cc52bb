"""Imported bundles, so that importing the same bundle twice changes nothing."""

from django.db import models


class ImportedBundle(models.Model):
    checksums_sha256 = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the bundle's checksums file"
    )
    n_clips = models.PositiveIntegerField(default=0)
    n_votes = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"bundle {self.checksums_sha256[:12]}"
