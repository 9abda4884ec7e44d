"""The platform's account-list pagination, for the bare-DRF floor: DRF's ``CursorPagination``
with the ordering and page size of ``tenancy.api_plumbing.IdCursorPagination`` (``-id``, 50),
so the floor's cursor page runs the same keyset query as the platform's."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class FloorCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
