"""Routes of the public price portal."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
