"""The API's pages (the REST framework's default pagination class, in settings)."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """limit/offset pages; ``limit`` is capped, a malformed one means the default."""

    default_limit = 100
    max_limit = 1000
