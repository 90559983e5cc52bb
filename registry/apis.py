"""The registry's REST API (under /api/registry/): administrators only, one view
per operation. Errors are JSON ``{"detail": ...}`` (annotation's handler)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from annotation.apis import _Api, _paginate
from annotation.errors import InvalidInput
from annotation.permissions import IsAdmin
from registry import selectors, services
from registry.profiles import PROFILES
from registry.serializers import (
    PredictionOutputSerializer,
    ProfileOutputSerializer,
    RunDetailOutputSerializer,
    RunOutputSerializer,
    RunStartInputSerializer,
    SnapshotOutputSerializer,
    VersionDetailOutputSerializer,
    VersionOutputSerializer,
)


class _AdminApi(_Api):
    permission_classes = [IsAdmin]


def _run(run_id: int):
    run = selectors.run_get(run_id=run_id)
    if run is None:
        raise services.RunNotFound(f"There is no training run {run_id}.")
    return run


def _version(version_id: int):
    version = selectors.version_get(version_id=version_id)
    if version is None:
        raise services.VersionNotFound(f"There is no model version {version_id}.")
    return version


class ProfileListApi(_AdminApi):
    pagination_class = None  # a handful of fixed profiles: one plain list

    @extend_schema(responses=ProfileOutputSerializer(many=True))
    def get(self, request):
        return Response(ProfileOutputSerializer(PROFILES.values(), many=True).data)


class RunCollectionApi(_AdminApi):
    @extend_schema(responses=RunOutputSerializer(many=True))
    def get(self, request):
        return _paginate(self, request, selectors.run_list(), RunOutputSerializer)

    @extend_schema(
        request=RunStartInputSerializer, responses={201: RunOutputSerializer}
    )
    def post(self, request):
        params = RunStartInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        run = services.training_run_create(
            profile=params.validated_data["profile"],
            queue=params.validated_data.get("queue"),
            overrides=params.overrides(),
            user=request.user,
        )
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(_AdminApi):
    @extend_schema(responses=RunDetailOutputSerializer)
    def get(self, request, run_id: int):
        return Response(RunDetailOutputSerializer(_run(run_id)).data)


class RunCancelApi(_AdminApi):
    @extend_schema(request=None, responses=RunOutputSerializer)
    def post(self, request, run_id: int):
        run = services.training_run_cancel(run_id=run_id, user=request.user)
        return Response(RunOutputSerializer(run).data)


class RunRetryApi(_AdminApi):
    @extend_schema(request=None, responses={201: RunOutputSerializer})
    def post(self, request, run_id: int):
        run = services.training_run_retry(run_id=run_id, user=request.user)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class VersionListApi(_AdminApi):
    @extend_schema(responses=VersionOutputSerializer(many=True))
    def get(self, request):
        return _paginate(
            self, request, selectors.version_list(), VersionOutputSerializer
        )


class VersionDetailApi(_AdminApi):
    @extend_schema(responses=VersionDetailOutputSerializer)
    def get(self, request, version_id: int):
        return Response(VersionDetailOutputSerializer(_version(version_id)).data)


class VersionPromoteApi(_AdminApi):
    @extend_schema(request=None, responses=VersionOutputSerializer)
    def post(self, request, version_id: int):
        version = services.model_version_promote(
            version_id=version_id, user=request.user
        )
        return Response(VersionOutputSerializer(version).data)


class VersionRollbackApi(_AdminApi):
    @extend_schema(request=None, responses=VersionOutputSerializer)
    def post(self, request):
        version = services.model_version_rollback(user=request.user)
        return Response(VersionOutputSerializer(version).data)


class PredictionListApi(_AdminApi):
    @extend_schema(
        parameters=[OpenApiParameter("clip", int, many=True)],
        responses=PredictionOutputSerializer(many=True),
    )
    def get(self, request, version_id: int):
        clip_ids = None
        if "clip" in request.query_params:
            try:
                clip_ids = [int(c) for c in request.query_params.getlist("clip")]
            except ValueError:
                raise InvalidInput("clip must be a clip id (an integer).") from None
        rows = selectors.predictions_for_version(
            version=_version(version_id), clip_ids=clip_ids
        )
        return _paginate(self, request, rows, PredictionOutputSerializer)


class SnapshotListApi(_AdminApi):
    @extend_schema(responses=SnapshotOutputSerializer(many=True))
    def get(self, request):
        return _paginate(
            self, request, selectors.snapshot_list(), SnapshotOutputSerializer
        )
