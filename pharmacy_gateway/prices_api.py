"""Price publication by pharmacies (`PUT /gateway/v1/prices`)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
