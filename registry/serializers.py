"""Input and output shapes of the registry API (administrators only)."""

from __future__ import annotations

from rest_framework import serializers

from registry.profiles import PROFILES


class RunStartInputSerializer(serializers.Serializer):
    profile = serializers.ChoiceField(choices=sorted(PROFILES))
    queue = serializers.ChoiceField(choices=["cpu", "gpu"], required=False)
    epochs = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    k = serializers.IntegerField(min_value=2, max_value=20, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=1024, required=False)
    loss = serializers.ChoiceField(choices=["emd", "mse", "jsd", "ce"], required=False)

    def overrides(self) -> dict:
        return {
            k: v
            for k, v in self.validated_data.items()
            if k not in ("profile", "queue")
        }


class FoldOutputSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.CharField()
    status_display = serializers.CharField(source="get_status_display")
    attempt = serializers.IntegerField()
    progress = serializers.JSONField()
    log_tail = serializers.CharField()
    error_message = serializers.CharField()
    worker_host = serializers.CharField()
    device_name = serializers.CharField()
    peak_memory_mb = serializers.FloatField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)


class RunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    profile = serializers.CharField()
    queue = serializers.CharField()
    trigger = serializers.CharField()
    status = serializers.CharField()
    status_display = serializers.CharField(source="get_status_display")
    cancel_requested = serializers.BooleanField()
    overrides = serializers.JSONField()
    snapshot = serializers.CharField(source="snapshot.sha256", allow_null=True)
    error_message = serializers.CharField()
    log_tail = serializers.CharField()
    timings = serializers.JSONField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    retry_of = serializers.IntegerField(source="retry_of_id", allow_null=True)
    version = serializers.SerializerMethodField()

    def get_version(self, run) -> int | None:
        version = getattr(run, "version", None) if run.status == "done" else None
        return version.number if version else None


class RunDetailOutputSerializer(RunOutputSerializer):
    config = serializers.JSONField()
    folds = FoldOutputSerializer(many=True, source="folds.all")


class VersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    run = serializers.IntegerField(source="run_id")
    profile = serializers.CharField()
    model_name = serializers.CharField()
    emd_mean = serializers.FloatField()
    emd_std = serializers.FloatField()
    baseline_emd = serializers.FloatField(allow_null=True)
    mean = serializers.JSONField(source="metrics.mean")
    std = serializers.JSONField(source="metrics.std")
    snapshot = serializers.CharField(source="snapshot.sha256")
    snapshot_cutoff = serializers.DateTimeField(source="snapshot.cutoff")
    n_clips = serializers.IntegerField(source="snapshot.n_clips")
    final_model = serializers.CharField()
    artifact_path = serializers.CharField()
    code_version = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class VersionDetailOutputSerializer(VersionOutputSerializer):
    metrics = serializers.JSONField()


class PredictionOutputSerializer(serializers.Serializer):
    clip = serializers.IntegerField(source="clip_id")
    probs = serializers.ListField(child=serializers.FloatField())
    source = serializers.CharField()
    fold = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class SnapshotOutputSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    cutoff = serializers.DateTimeField()
    min_votes = serializers.IntegerField()
    n_clips = serializers.IntegerField()
    n_votes = serializers.IntegerField()
    path = serializers.CharField()
    is_synthetic = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ProfileOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    queues = serializers.ListField(child=serializers.CharField())
    config = serializers.JSONField()
