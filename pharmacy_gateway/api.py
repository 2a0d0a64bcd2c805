"""Routes of the pharmacy gateway."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
