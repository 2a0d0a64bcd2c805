"""Routes of the drug catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from eprescribe.catalogue import service
from eprescribe.catalogue.schemas import DrugCategory, DrugCreate, DrugPage, DrugPublic
from eprescribe.registry.deps import CurrentAdmin
from kit.database import SessionDep
from kit.errors import ERRORS
from kit.fields import PageOffset

router = APIRouter(tags=["catalogue"])


@router.post("/api/v1/drugs", status_code=201, response_model=DrugPublic, responses=ERRORS)
async def create_drug(body: DrugCreate, _: CurrentAdmin, session: SessionDep) -> DrugPublic:
    """Add a product to the national catalogue."""
    return (await service.add_drug(session, body)).public()


@router.get("/api/v1/drugs", response_model=DrugPage, responses=ERRORS)
async def search_drugs(
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[DrugCategory | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[PageOffset, Query()] = 0,
) -> DrugPage:
    """Search the catalogue by brand, active ingredient or registration number (no token)."""
    total, products = await service.search(session, q=q, category=category, limit=limit, offset=offset)
    return DrugPage(total=total, items=[p.public() for p in products])
