"""Reads, split by topic; every public name is re-exported here, so callers
write ``selectors.distribution_for_clips`` whatever module holds it."""

from annotation.selectors.distributions import (  # noqa: F401
    DistributionArrays,
    distribution_arrays,
    distribution_dicts,
    distribution_for_clip,
    distribution_for_clips,
    distribution_from_counts,
    distribution_recount_mismatches,
    distribution_rows,
    distribution_stats,
)
from annotation.selectors.explorer import (  # noqa: F401
    CLIP_SORTS,
    ClipTable,
    clips_explorer,
    expert_detail,
)
from annotation.selectors.feedback import expert_feedback  # noqa: F401
from annotation.selectors.panel import (  # noqa: F401
    PanelVotes,
    expert_codes,
    expert_consistency,
    finite_or_none,
    panel_is_synthetic,
    panel_statistics_latest,
    panel_statistics_stale,
    panel_votes,
    repeat_pairs,
)
from annotation.selectors.queue import (  # noqa: F401
    Assignment,
    clip_next_for_expert,
    expert_progress,
    expert_queue_state,
    vote_budget,
)
from annotation.selectors.recordings import (  # noqa: F401
    BUSY,
    clips_for_review,
    clips_rejected_recently,
    recording_clips,
    recording_for_status,
    recording_status_payload,
    recordings_for_list,
)
from annotation.selectors.site import (  # noqa: F401
    SITE_SETTINGS_CACHE_KEY,
    site_settings,
)
from annotation.selectors.votes import (  # noqa: F401
    clips_visible_to,
    expert_self_consistency,
    presentation_vote,
    vote_context,
    votes_for_user,
    votes_of_expert,
)
