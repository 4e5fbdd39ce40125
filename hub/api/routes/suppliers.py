"""Routes of suppliers, credentials and upstream call records (issue 3)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["suppliers"])
