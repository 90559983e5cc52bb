"""Django admin for the registry: everything read-only (runs are started, cancelled
and promoted on the registry pages, which record who did it); nothing is deleted
here, since versions and predictions are the lineage of every figure."""

from django.contrib import admin

from registry.models import (
    ModelVersion,
    Prediction,
    Snapshot,
    TrainingFold,
    TrainingRun,
    VersionEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ("sha256", "cutoff", "n_clips", "n_votes", "min_votes", "created_at")


class FoldInline(admin.TabularInline):
    model = TrainingFold
    extra = 0
    can_delete = False
    fields = (
        "index",
        "status",
        "attempt",
        "worker_host",
        "device_name",
        "heartbeat_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "profile", "queue", "status", "trigger", "created_at")
    list_filter = ("status", "profile", "trigger")
    inlines = [FoldInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("number", "model_name", "emd_mean", "emd_std", "is_active")


@admin.register(VersionEvent)
class VersionEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "version", "previous", "by")


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ("version", "clip", "source", "p_a", "p_b", "p_c", "p_d", "p_e")
    list_filter = ("source",)
    list_select_related = ("version",)
