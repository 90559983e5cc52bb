"""REST API views: thin, one operation per method, logic in services and selectors.

Errors are always JSON ``{"detail": "..."}`` (plus ``errors`` with field messages for
validation failures), through ``exception_handler`` below, named in settings.
"""

from __future__ import annotations

import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DataError, IntegrityError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from annotation import errors, roles, selectors, services
from annotation.handles import presentation_for, presentation_handle
from annotation.middleware import (
    DATABASE_DOWN,
    RETRY_AFTER_SECONDS,
    database_unavailable,
)
from annotation.models import Clip, Recording, RepeatVote
from annotation.pagination import Pagination
from annotation.parsers import TextJSONParser
from annotation.permissions import (
    IsAdmin,
    IsExpert,
    IsExpertOrAdmin,
    IsOperator,
    RoleTokenAuthentication,
)
from annotation.request_errors import request_error
from annotation.serializers import (
    ClipAdminOutputSerializer,
    ClipNextInputSerializer,
    ClipNextOutputSerializer,
    ClipReleaseInputSerializer,
    ClipReleaseOutputSerializer,
    ClipReviewInputSerializer,
    ClipReviewOutputSerializer,
    DistributionListInputSerializer,
    DistributionRowSerializer,
    ExpertVoteOutputSerializer,
    QueuedClipSerializer,
    RecordingMotilitySerializer,
    VoteChangeInputSerializer,
    VoteCreateInputSerializer,
    VoteOutputSerializer,
    VoteResultSerializer,
    database_id,
    vote_change_url,
)

logger = logging.getLogger(__name__)


# --- errors ------------------------------------------------------------------------


def _summarize(field_errors) -> str:
    """{'grade': ['msg']} → "grade: msg" (one line a person can read)."""
    if isinstance(field_errors, dict):
        parts = []
        for field, messages in field_errors.items():
            text = _summarize(messages)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(field_errors, list):
        return " ".join(_summarize(item) for item in field_errors)
    return str(field_errors)


def exception_handler(exc, context):
    known = request_error(exc)
    if known is not None:
        set_rollback()
        return Response({"detail": known[1]}, status=known[0])
    if isinstance(exc, errors.DomainError):
        set_rollback()
        return Response({"detail": exc.message}, status=exc.status_code)
    if isinstance(exc, IntegrityError):
        set_rollback()
        return Response(
            {"detail": "This conflicts with a change made at the same time; reload."},
            status=status.HTTP_409_CONFLICT,
        )
    if database_unavailable(exc):
        set_rollback()
        return Response(
            {"detail": DATABASE_DOWN},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DataError):
        set_rollback()
        return Response(
            # the database's own text names tables and columns: not for clients
            {"detail": "A value in the request does not fit the database."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        set_rollback()
        return Response(
            {"detail": "Internal server error; the cause is in the server log."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _summarize(response.data), "errors": response.data}
    elif not isinstance(response.data, dict) or "detail" not in response.data:
        response.data = {"detail": _summarize(response.data)}
    return response


@csrf_exempt  # changes nothing; a token client's POST gets the JSON 404, not the
# CSRF failure page meant for browsers
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}; see /api/docs/."}, status=404
    )


# --- helpers -----------------------------------------------------------------------


def _progress(expert) -> dict:
    graded, total = selectors.expert_progress(expert=expert)
    return {"graded": graded, "total": total}


def _vote_result(*, expert, vote) -> dict:
    # Named by the presentation handle: a repeat's answer has the same fields,
    # the same kind of id and the same change URL as any other.
    handle = presentation_handle(
        expert_id=expert.pk,
        clip_id=vote.clip_id,
        repeat=isinstance(vote, RepeatVote),
    )
    result = {
        "id": handle,
        "clip": handle,
        "grade": vote.grade,
        "created_at": vote.created_at,
        "undo_until": services.vote_undo_until(vote=vote),
        "change_url": vote_change_url(handle),
        "progress": _progress(expert),
    }
    # The panel only with a final vote (undo_until is None then): seeing it can
    # never be followed by a change.
    if result["undo_until"] is None:
        result["panel"] = selectors.distribution_for_clip(clip_id=vote.clip_id)
    return result


class _Api(APIView):
    # Session or token; the token query brings the user's role groups along, so a
    # permission check costs no extra round trip.
    # Token first: a request that fails authentication gets 401 with the
    # ``WWW-Authenticate: Token`` challenge, not a bare 403.
    authentication_classes = [RoleTokenAuthentication, SessionAuthentication]
    # What ``_paginate`` uses; named here so the schema shows list answers as the
    # pages they are (count, next, previous, results) with limit and offset.
    pagination_class = Pagination


def _paginate(view: APIView, request, queryset, serializer_class) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


# --- next clip ---------------------------------------------------------------------


class ClipNextApi(_Api):
    """The signed-in expert's current clip and one to preload, each leased.

    A POST (it creates leases), so under CSRF: a foreign page cannot make a
    signed-in expert's browser take clips. ``tab`` and ``count`` come from the
    query string or the body."""

    permission_classes = [IsExpert]

    @extend_schema(
        parameters=[ClipNextInputSerializer],
        request=None,
        responses=ClipNextOutputSerializer,
    )
    def post(self, request):
        given = request.query_params.dict()
        if isinstance(request.data, dict):
            given.update(
                {k: request.data[k] for k in ("tab", "count") if k in request.data}
            )
        params = ClipNextInputSerializer(data=given)
        params.is_valid(raise_exception=True)
        assignments = selectors.clip_next_for_expert(
            expert=request.user,
            count=params.validated_data["count"],
            holder=params.validated_data["tab"],
        )
        clips = _servable(assignments, expert_id=request.user.pk)
        graded, total, elsewhere = selectors.expert_queue_state(
            expert=request.user, holder=params.validated_data["tab"]
        )
        # The clips are serialised once, by _servable (ClipNextOutputSerializer
        # documents the same shape for the schema).
        response = Response(
            {
                "clips": clips,
                "progress": {"graded": graded, "total": total},
                "held_elsewhere": elsewhere,
            }
        )
        response["Cache-Control"] = "no-store"
        return response


def _servable(assignments: list, *, expert_id: int) -> list[dict]:
    """The assignments serialised, those that make valid JSON. One that does not
    (a value no check caught: a broken track, a number JSON cannot carry) is
    withdrawn with the reason for admins and left out, so one bad clip never
    stops the queue for every expert it is handed to."""
    kept = []
    for assignment in assignments:
        try:
            data = QueuedClipSerializer(
                assignment, context={"expert_id": expert_id}
            ).data
            json.dumps(data, allow_nan=False, cls=DjangoJSONEncoder)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            logger.error("clip %s cannot be served: %r", assignment.clip.pk, exc)
            services.clip_withdraw_broken(
                clip_id=assignment.clip.pk,
                reason=f"it could not be served to experts ({type(exc).__name__})",
            )
            continue
        kept.append(data)
    return kept


class ClipReleaseApi(_Api):
    """A closing tab hands its clips back (the grading page's ``pagehide``
    beacon, a form POST carrying the CSRF token in its body): its leases lapse
    at once. Grades still waiting in that browser land later all the same."""

    permission_classes = [IsExpert]

    @extend_schema(
        request=ClipReleaseInputSerializer, responses=ClipReleaseOutputSerializer
    )
    def post(self, request):
        params = ClipReleaseInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        released = services.clip_leases_release_tab(
            expert=request.user,
            holder=params.validated_data["tab"],
            before=params.validated_data.get("before"),
        )
        return Response({"released": released})


# --- votes -------------------------------------------------------------------------


_VOTE_BY_ROLE = PolymorphicProxySerializer(
    component_name="VoteByRole",
    serializers=[ExpertVoteOutputSerializer, VoteOutputSerializer],
    resource_type_field_name=None,
)
_VOTE_BY_ROLE_MANY = PolymorphicProxySerializer(
    component_name="VoteByRole",
    serializers=[ExpertVoteOutputSerializer, VoteOutputSerializer],
    resource_type_field_name=None,
    many=True,
)


def _clip_for_vote(*, expert, ref) -> tuple[Clip, bool, dict | None]:
    """The clip a vote names, how it was presented and the expert's lease of it
    (read together, one statement). Experts name clips only by the handles they
    were given: a database id would let them ask about clips never handed to
    them (which exist, which are withdrawn or graded), so a number gets the same
    answer as an unknown handle."""
    found = (
        None
        if isinstance(ref, int)
        else presentation_for(expert_id=expert.pk, handle=ref)
    )
    if found is None:
        raise errors.ClipNotFound(NO_SUCH_HANDLE)
    clip, lease = selectors.vote_context(expert_id=expert.pk, clip_id=found.clip_id)
    if clip is None:
        raise errors.ClipNotFound(NO_SUCH_HANDLE)
    return clip, found.repeat, lease


NO_SUCH_HANDLE = (
    "No clip of yours has this handle; grade a clip by the id the next-clip "
    "answer gave for it."
)


class VoteCollectionApi(_Api):
    """GET: votes (an expert's own, repeats among them, by handle; all first
    votes, by id, for admins). POST: cast a vote."""

    def get_permissions(self):
        return [IsExpert()] if self.request.method == "POST" else [IsExpertOrAdmin()]

    @extend_schema(responses=_VOTE_BY_ROLE_MANY)
    def get(self, request):
        if roles.user_is_admin(user=request.user):
            votes = selectors.votes_for_user(user=request.user)
            return _paginate(self, request, votes, VoteOutputSerializer)
        paginator = Pagination()
        page = paginator.paginate_queryset(
            selectors.votes_of_expert(expert=request.user), request, view=self
        )
        data = ExpertVoteOutputSerializer(
            page, many=True, context={"expert_id": request.user.pk}
        ).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        request=VoteCreateInputSerializer, responses={201: VoteResultSerializer}
    )
    def post(self, request):
        payload = VoteCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        clip, as_repeat, lease = _clip_for_vote(expert=request.user, ref=data["clip"])
        vote = services.vote_create(
            expert=request.user,
            clip=clip,
            grade=data["grade"],
            seconds_spent=data["seconds_spent"],
            offered_only=True,
            as_repeat=as_repeat,
            lease=lease,
        )
        result = _vote_result(expert=request.user, vote=vote)
        return Response(
            VoteResultSerializer(result).data, status=status.HTTP_201_CREATED
        )


class VoteDetailApi(_Api):
    """GET: one vote (an expert's own by handle; any by id for admins).
    PATCH: change one's grade (undo), by the handle of its change URL."""

    def get_permissions(self):
        return [IsExpert()] if self.request.method == "PATCH" else [IsExpertOrAdmin()]

    def _presentation(self, request, vote_ref: str):
        found = presentation_for(expert_id=request.user.pk, handle=vote_ref)
        if found is None:
            raise Http404("You have no vote with this handle.")
        return found

    @extend_schema(responses=_VOTE_BY_ROLE)
    def get(self, request, vote_ref: str):
        if roles.user_is_admin(user=request.user):
            vote_id = database_id(vote_ref)
            vote = (
                selectors.votes_for_user(user=request.user).filter(pk=vote_id).first()
                if vote_id is not None
                else None
            )
            if vote is None:
                raise Http404(f"No vote has the id {vote_ref[:40]}.")
            return Response(VoteOutputSerializer(vote).data)
        found = self._presentation(request, vote_ref)
        row = selectors.presentation_vote(
            expert=request.user, clip_id=found.clip_id, repeat=found.repeat
        )
        if row is None:
            raise Http404("You have no vote with this handle.")
        return Response(
            ExpertVoteOutputSerializer(row, context={"expert_id": request.user.pk}).data
        )

    @extend_schema(request=VoteChangeInputSerializer, responses=VoteResultSerializer)
    def patch(self, request, vote_ref: str):
        payload = VoteChangeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        found = self._presentation(request, vote_ref)
        vote = services.presentation_vote_change(
            expert=request.user,
            clip_id=found.clip_id,
            repeat=found.repeat,
            grade=payload.validated_data["grade"],
        )
        return Response(
            VoteResultSerializer(_vote_result(expert=request.user, vote=vote)).data
        )


# --- clips and distributions -------------------------------------------------------


class ClipListApi(_Api):
    """Every clip with provenance, measurements and the panel (admins only).
    Experts get their clips from POST /api/clips/next/, named by handle: they
    never browse the pool or see clip ids."""

    permission_classes = [IsAdmin]

    @extend_schema(responses=ClipAdminOutputSerializer(many=True))
    def get(self, request):
        clips = selectors.clips_visible_to(user=request.user).select_related("patient")
        return _paginate(self, request, clips, ClipAdminOutputSerializer)


class ClipDetailApi(_Api):
    permission_classes = [IsAdmin]

    @extend_schema(responses=ClipAdminOutputSerializer)
    def get(self, request, clip_id: int):
        clip = selectors.clips_visible_to(user=request.user).filter(pk=clip_id).first()
        if clip is None:
            raise errors.ClipNotFound(f"Clip {clip_id} does not exist.")
        return Response(ClipAdminOutputSerializer(clip).data)


class ClipReviewApi(_Api):
    """Approve a clip for grading or reject it with a reason (administrators and
    operators): clips cut from uploaded recordings wait for this."""

    permission_classes = [IsOperator]

    @extend_schema(
        request=ClipReviewInputSerializer, responses=ClipReviewOutputSerializer
    )
    def post(self, request, clip_id: int):
        params = ClipReviewInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        clip = services.clip_review(
            clip_id=clip_id,
            decision=params.validated_data["decision"],
            reason=params.validated_data["reason"],
            user=request.user,
        )
        return Response(ClipReviewOutputSerializer(clip).data)


class RecordingMotilityApi(_Api):
    """A recording's motility (administrators and operators): counts and % of
    progressive / non-progressive / immotile tracks, mean kinematics, the VAP
    values. 404 until the recording has been processed."""

    permission_classes = [IsOperator]

    @extend_schema(responses=RecordingMotilitySerializer)
    def get(self, request, recording_id: int):
        recording = (
            Recording.objects.only("id", "status", "motility")
            .filter(pk=recording_id)
            .first()
        )
        if recording is None:
            raise errors.RecordingNotFound(f"Recording {recording_id} does not exist.")
        if not recording.motility:
            raise errors.RecordingNotFound(
                f"Recording {recording_id} has no motility yet: it is "
                f"{recording.get_status_display()}."
            )
        body = {"recording": recording.pk, "status": recording.status}
        return Response(
            RecordingMotilitySerializer({**recording.motility, **body}).data
        )


class DistributionListApi(_Api):
    """Every clip's grade distribution (admins only), computed by the database."""

    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[
            OpenApiParameter("clip", int, many=True, description="?clip=1&clip=2")
        ],
        responses=DistributionRowSerializer(many=True),
    )
    def get(self, request):
        params = DistributionListInputSerializer(
            data={"clip": request.query_params.getlist("clip")}
            if "clip" in request.query_params
            else {}
        )
        params.is_valid(raise_exception=True)
        rows = selectors.distribution_rows(clip_ids=params.validated_data.get("clip"))
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        summaries = selectors.distribution_dicts(
            selectors.distribution_stats([row.counts for row in page])
        )
        data = [
            {"clip": row.clip_id, **summary}
            for row, summary in zip(page, summaries, strict=True)
        ]
        return paginator.get_paginated_response(
            DistributionRowSerializer(data, many=True).data
        )


class ThrottledObtainAuthToken(ObtainAuthToken):
    """DRF's token endpoint; repeated failures are throttled (services.throttle)."""

    # ObtainAuthToken names its own parsers: the site's JSON parser, not DRF's.
    parser_classes = (FormParser, MultiPartParser, TextJSONParser)

    def post(self, request, *args, **kwargs):
        data = request.data if isinstance(request.data, dict) else {}
        who = {
            "username": str(data.get("username", ""))[:150],
            "address": services.client_address(request),
        }
        wait, reason = services.login_refusal(**who)
        if wait:
            return Response(
                {"detail": services.login_refusal_message(wait, reason)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            services.login_failure_record(**who)
            raise exceptions.ValidationError(serializer.errors)
        services.login_success_record(**who)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
