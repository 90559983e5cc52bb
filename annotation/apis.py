"""REST API views: thin, one operation per method, logic in services and selectors.

Errors are always JSON ``{"detail": "..."}`` (plus ``errors`` with field messages for
validation failures), through ``exception_handler`` below, named in settings.
"""

from __future__ import annotations

import logging

from django.db import DataError, IntegrityError
from django.http import Http404, JsonResponse
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from annotation import errors, roles, selectors, services
from annotation.models import Clip, RepeatVote
from annotation.pagination import Pagination
from annotation.permissions import (
    IsAdmin,
    IsExpert,
    IsExpertOrAdmin,
    RoleTokenAuthentication,
)
from annotation.request_errors import request_error
from annotation.serializers import (
    ClipAdminOutputSerializer,
    ClipNextInputSerializer,
    ClipNextOutputSerializer,
    ClipOutputSerializer,
    DistributionListInputSerializer,
    DistributionRowSerializer,
    VoteChangeInputSerializer,
    VoteCreateInputSerializer,
    VoteOutputSerializer,
    VoteResultSerializer,
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


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}; see /api/docs/."}, status=404
    )


# --- helpers -----------------------------------------------------------------------


def _progress(expert) -> dict:
    graded, total = selectors.expert_progress(expert=expert)
    return {"graded": graded, "total": total}


def _vote_result(*, expert, vote) -> dict:
    is_repeat = isinstance(vote, RepeatVote)
    name = "api-repeat-vote-change" if is_repeat else "api-vote-detail"
    result = {
        "id": vote.pk,
        "clip": vote.clip_id,
        "grade": vote.grade,
        "created_at": vote.created_at,
        "undo_until": services.vote_undo_until(vote=vote),
        "change_url": reverse(name, args=[vote.pk]),
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
        body = {"clips": assignments, "progress": _progress(request.user)}
        response = Response(ClipNextOutputSerializer(body).data)
        response["Cache-Control"] = "no-store"
        return response


# --- votes -------------------------------------------------------------------------


class VoteCollectionApi(_Api):
    """GET: votes (an expert's own; all for admins). POST: cast a vote."""

    def get_permissions(self):
        return [IsExpert()] if self.request.method == "POST" else [IsExpertOrAdmin()]

    @extend_schema(responses=VoteOutputSerializer(many=True))
    def get(self, request):
        votes = selectors.votes_for_user(user=request.user)
        return _paginate(self, request, votes, VoteOutputSerializer)

    @extend_schema(
        request=VoteCreateInputSerializer, responses={201: VoteResultSerializer}
    )
    def post(self, request):
        payload = VoteCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        clip = Clip.objects.only("id", "is_active").filter(pk=data["clip"]).first()
        if clip is None:
            raise errors.ClipNotFound(f"Clip {data['clip']} does not exist.")
        vote = services.vote_create(
            expert=request.user,
            clip=clip,
            grade=data["grade"],
            seconds_spent=data["seconds_spent"],
            offered_only=True,
        )
        result = _vote_result(expert=request.user, vote=vote)
        return Response(
            VoteResultSerializer(result).data, status=status.HTTP_201_CREATED
        )


class VoteDetailApi(_Api):
    """GET: one vote (own, or any for admins). PATCH: change one's grade (undo)."""

    def get_permissions(self):
        return [IsExpert()] if self.request.method == "PATCH" else [IsExpertOrAdmin()]

    @extend_schema(responses=VoteOutputSerializer)
    def get(self, request, vote_id: int):
        vote = selectors.votes_for_user(user=request.user).filter(pk=vote_id).first()
        if vote is None:
            raise Http404(f"You have no vote with id {vote_id}.")
        return Response(VoteOutputSerializer(vote).data)

    @extend_schema(request=VoteChangeInputSerializer, responses=VoteResultSerializer)
    def patch(self, request, vote_id: int):
        payload = VoteChangeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        vote = services.vote_change(
            expert=request.user, vote_id=vote_id, grade=payload.validated_data["grade"]
        )
        return Response(
            VoteResultSerializer(_vote_result(expert=request.user, vote=vote)).data
        )


class RepeatVoteChangeApi(_Api):
    """PATCH: change a just-given vote that the server stored as a repeat."""

    permission_classes = [IsExpert]

    @extend_schema(request=VoteChangeInputSerializer, responses=VoteResultSerializer)
    def patch(self, request, vote_id: int):
        payload = VoteChangeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        vote = services.repeat_vote_change(
            expert=request.user,
            repeat_vote_id=vote_id,
            grade=payload.validated_data["grade"],
        )
        return Response(
            VoteResultSerializer(_vote_result(expert=request.user, vote=vote)).data
        )


# --- clips and distributions -------------------------------------------------------


def _clip_serializer(user):
    if roles.user_is_admin(user=user):
        return ClipAdminOutputSerializer
    return ClipOutputSerializer


# Experts get ClipOutput (only what grading needs), admins ClipAdminOutput.
_CLIP_BY_ROLE = PolymorphicProxySerializer(
    component_name="ClipByRole",
    serializers=[ClipOutputSerializer, ClipAdminOutputSerializer],
    resource_type_field_name=None,
)
_CLIP_BY_ROLE_MANY = PolymorphicProxySerializer(
    component_name="ClipByRoleList",
    serializers=[ClipOutputSerializer, ClipAdminOutputSerializer],
    resource_type_field_name=None,
    many=True,
)


class ClipListApi(_Api):
    """Clips: for an expert only those handed to them or graded by them, with
    only what grading needs; everything, with the panel, for admins."""

    permission_classes = [IsExpertOrAdmin]

    @extend_schema(responses=_CLIP_BY_ROLE_MANY)
    def get(self, request):
        clips = selectors.clips_visible_to(user=request.user).select_related("patient")
        return _paginate(self, request, clips, _clip_serializer(request.user))


class ClipDetailApi(_Api):
    permission_classes = [IsExpertOrAdmin]

    @extend_schema(responses=_CLIP_BY_ROLE)
    def get(self, request, clip_id: int):
        clip = selectors.clips_visible_to(user=request.user).filter(pk=clip_id).first()
        if clip is None:
            raise errors.ClipNotFound(f"Clip {clip_id} does not exist.")
        return Response(_clip_serializer(request.user)(clip).data)


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

    def post(self, request, *args, **kwargs):
        data = request.data if isinstance(request.data, dict) else {}
        who = {
            "username": str(data.get("username", ""))[:150],
            "address": request.META.get("REMOTE_ADDR", ""),
        }
        wait = services.login_wait_seconds(**who)
        if wait:
            return Response(
                {"detail": services.login_refusal_message(wait)},
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
