"""Writes, split by topic; every public name is re-exported here, so callers
write ``services.vote_create`` whatever module holds it."""

from annotation.services.clips import (  # noqa: F401
    clip_create,
    clip_repeat_video,
    clip_review,
    clip_withdraw_broken,
    clips_set_active,
    patient_get_or_create,
)
from annotation.services.distributions import (  # noqa: F401
    distribution_recount,
)
from annotation.services.enqueue import (  # noqa: F401
    task_send,
)
from annotation.services.experts import (  # noqa: F401
    EXPERT_CSV_COLUMNS,
    ExpertRow,
    admin_create,
    expert_create,
    experts_import_csv,
    experts_parse_csv,
)
from annotation.services.jobs import (  # noqa: F401
    job_cancel,
    job_create,
    job_mark_done,
    job_mark_failed,
    job_mark_running,
    job_progress,
    job_send,
    panel_snapshot_compute,
    panel_snapshot_request,
)
from annotation.services.panel import (  # noqa: F401
    CONVERGENCE_CLIPS,
    KAPPA_EXPERTS,
    MEAN_BINS,
    STD_BINS,
    panel_statistics_compute,
    panel_statistics_refresh,
)
from annotation.services.panel_claim import (  # noqa: F401
    panel_statistics_claim_release,
    panel_statistics_claim_take,
    panel_statistics_refresh_queue,
)
from annotation.services.priorities import clip_model_priorities_replace  # noqa: F401
from annotation.services.queue import (  # noqa: F401
    clip_leases_grant,
    clip_leases_release_expired,
    clip_leases_release_tab,
    site_setting_update,
    site_settings_forget,
)
from annotation.services.recordings import (  # noqa: F401
    MAX_CLIPS_PER_RECORDING,
    MAX_TARGETS,
    VIDEO_EXTENSIONS,
    DuplicateRecording,
    RecordingBusy,
    RecordingRejected,
    RecordingTooLarge,
    clips_replace_for_recording,
    message_scrub,
    recording_create_from_upload,
    recording_enqueue,
    recording_inspect_enqueue,
    recording_mark_done,
    recording_mark_failed,
    recording_mark_processing,
    recording_motility_set,
    recording_preview_mark_ready,
    recording_preview_names,
    recording_submit,
    recording_targets_set,
    recording_update_info,
    recording_update_progress,
    recording_upload_check,
    video_container_sniff,
)
from annotation.services.throttle import (  # noqa: F401
    client_address,
    login_failure_record,
    login_refusal,
    login_refusal_message,
    login_success_record,
    login_wait_seconds,
)
from annotation.services.votes import (  # noqa: F401
    MAX_SECONDS_SPENT,
    grade_parse,
    presentation_vote_change,
    repeat_votes_bulk_create_simulated,
    vote_create,
    vote_undo_until,
    votes_are_final,
    votes_bulk_create_simulated,
)
