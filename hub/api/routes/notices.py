"""Routes of notices, their versions and the changes feed (issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["notices"])
