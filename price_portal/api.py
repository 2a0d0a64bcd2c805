"""The public price portal's JSON API under /portal/api/v1 (no token; cacheable answers)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from eprescribe.catalogue.schemas import DrugCategory, Product
from eprescribe.registry.schemas import PharmacyKind, PharmacyRecord
from kit import web
from kit.database import ReadSessionDep
from kit.errors import PROBLEM, InvalidContent
from kit.fields import RowId
from kit.runtime import RuntimeDep
from kit.time import vn_time
from pharmacy_gateway.prices.schemas import PriceSort
from price_portal import service
from price_portal.schemas import (
    CSV_MAX_AGE,
    JSON_MAX_AGE,
    MAX_LIMIT,
    MAX_OFFSET,
    AlternativeOut,
    DrugRef,
    HistoryOut,
    HistoryPoint,
    OutletDetail,
    OutletListingOut,
    OutletOut,
    OutletPriceOut,
    OutletPricePage,
    OutletRef,
    PricePage,
    PriceRowOut,
    PriceStats,
    ProductOut,
)

router = APIRouter()

NOT_MODIFIED: dict[str, Any] = {"description": "Not modified (the `If-None-Match` ETag still matches)"}
ANSWERS: dict[int | str, dict[str, Any]] = {404: PROBLEM, 422: PROBLEM, 304: NOT_MODIFIED}
API_TAGS: list[str | Any] = ["price portal"]

Q = Annotated[
    str | None, Query(max_length=200, description="Brand, active ingredient or registration number")
]
ProvinceQuery = Annotated[str | None, Query(pattern=r"^[0-9]{2}$", description="Two-digit province code")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Deeper pages: use the CSV export")]


# ---- caching -----------------------------------------------------------------------------


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 8.8.3.2), as If-None-Match requires."""
    wanted = etag.removeprefix("W/")
    return any(
        tag.strip() in ("*", wanted) or tag.strip().removeprefix("W/") == wanted for tag in header.split(",")
    )


def cached_json(request: Request, model: BaseModel, *, max_age: int = JSON_MAX_AGE) -> Response:
    """A JSON answer with a weak ETag of its content; 304 when the client already has it."""
    body = model.model_dump_json().encode()
    etag = f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={max_age * 5}",
        "Vary": "Accept-Encoding",
    }
    if _etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


# ---- views -------------------------------------------------------------------------------


def drug_ref(drug: Product) -> DrugRef:
    return DrugRef(
        registration_no=drug.registration_no,
        name=drug.name,
        active_ingredient=drug.active_ingredient,
        strength=drug.strength,
        dosage_form=drug.dosage_form,
        category=drug.category,
    )


def outlet_ref(outlet: PharmacyRecord) -> OutletRef:
    return OutletRef(
        id=outlet.id,
        name=outlet.name,
        kind=outlet.kind,
        address=outlet.address,
        province_code=outlet.province_code,
    )


def outlet_detail(outlet: PharmacyRecord) -> OutletDetail:
    return OutletDetail(
        **outlet_ref(outlet).model_dump(), latitude=outlet.latitude, longitude=outlet.longitude
    )


def price_page(results: service.PriceResults, limit: int, offset: int) -> PricePage:
    return PricePage(
        total=results.total,
        items=[
            PriceRowOut(
                drug=drug_ref(r.drug),
                outlet=outlet_ref(r.outlet),
                price=r.listing.price,
                unit=r.listing.unit,
                updated_at=vn_time(r.listing.updated_at),
            )
            for r in results.rows
        ],
        limit=limit,
        offset=offset,
        fuzzy=results.fuzzy,
    )


def product_out(view: service.ProductView) -> ProductOut:
    d = view.drug
    return ProductOut(
        **drug_ref(d).model_dump(),
        unit=d.unit,
        packaging=d.packaging,
        manufacturer=d.manufacturer,
        country=d.country,
        declared_price=d.declared_price,
        stats=PriceStats(
            min=view.stats.min, median=view.stats.median, max=view.stats.max, outlets=view.stats.outlets
        ),
        alternatives=[
            AlternativeOut(
                **drug_ref(a.drug).model_dump(),
                unit=a.drug.unit,
                declared_price=a.drug.declared_price,
                min_price=a.min_price,
                outlets=a.outlets,
            )
            for a in view.alternatives
        ],
    )


def outlet_prices_out(page: service.OutletPrices, limit: int, offset: int) -> OutletPricePage:
    return OutletPricePage(
        total=page.total,
        items=[
            OutletPriceOut(
                outlet=outlet_detail(i.outlet),
                price=i.listing.price,
                unit=i.listing.unit,
                updated_at=vn_time(i.listing.updated_at),
                above_declared=i.above_declared,
                distance_km=round(i.distance_km, 2) if i.distance_km is not None else None,
                paid_median_30d=i.paid_median,
                paid_sales_30d=i.paid_sales,
            )
            for i in page.items
        ],
        limit=limit,
        offset=offset,
    )


def _near(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise InvalidContent.field(["query", missing], "give both lat and lon to sort by distance")
    return (lat, lon) if lat is not None and lon is not None else None


# ---- JSON API ----------------------------------------------------------------------------
# Registration numbers may hold '/' (supplements: "11673/2019/ĐKSP"), so product paths use the
# path converter, and the routes with a suffix are declared before the bare product route.


@router.get(
    "/portal/api/v1/prices",
    response_model=PricePage,
    tags=API_TAGS,
    responses={422: PROBLEM, 304: NOT_MODIFIED},
)
async def list_prices(
    request: Request,
    session: ReadSessionDep,
    q: Q = None,
    province: ProvinceQuery = None,
    category: Annotated[DrugCategory | None, Query()] = None,
    kind: Annotated[PharmacyKind | None, Query(description="Outlet kind")] = None,
    sort: Annotated[PriceSort, Query()] = PriceSort.PRICE,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response:
    """Listed prices by outlet; `q` matches with or without Vietnamese diacritics, typos tolerated."""
    query = service.PriceQuery(q, province, category, kind, sort, limit, offset)
    results = await service.search_prices(session, query)
    return cached_json(request, price_page(results, limit, offset))


@router.get(
    "/portal/api/v1/prices.csv",
    tags=API_TAGS,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, 422: PROBLEM},
)
async def export_prices(
    runtime: RuntimeDep,
    q: Q = None,
    province: ProvinceQuery = None,
    category: Annotated[DrugCategory | None, Query()] = None,
    kind: Annotated[PharmacyKind | None, Query()] = None,
    sort: Annotated[PriceSort, Query()] = PriceSort.PRICE,
) -> StreamingResponse:
    """The same rows as open data (every page at once), streamed as CSV."""
    query = service.PriceQuery(q, province, category, kind, sort, limit=0, offset=0)
    # Read in full first: the replica connection is back in the pool before a slow reader starts.
    spooled = await web.spool(service.export_csv(runtime.read_database, query))
    return StreamingResponse(
        web.unspool(spooled),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="gia-thuoc.csv"',
            "Cache-Control": f"public, max-age={CSV_MAX_AGE}",
        },
    )


@router.get(
    "/portal/api/v1/drugs/{registration_no:path}/outlets",
    response_model=OutletPricePage,
    tags=API_TAGS,
    responses=ANSWERS,
)
async def product_outlets(
    request: Request,
    registration_no: str,
    session: ReadSessionDep,
    province: ProvinceQuery = None,
    kind: Annotated[PharmacyKind | None, Query()] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """Outlets listing the product: cheapest first, or nearest first given `lat` and `lon`."""
    near = _near(lat, lon)
    drug = await service.get_product(session, registration_no)
    page = await service.outlets_for_product(
        session, drug, province=province, kind=kind, near=near, limit=limit, offset=offset
    )
    return cached_json(request, outlet_prices_out(page, limit, offset))


@router.get(
    "/portal/api/v1/drugs/{registration_no:path}/history",
    response_model=HistoryOut,
    tags=API_TAGS,
    responses=ANSWERS,
)
async def product_history(
    request: Request,
    registration_no: str,
    session: ReadSessionDep,
    days: Annotated[int, Query(ge=7, le=730)] = service.HISTORY_DAYS,
) -> Response:
    """Lowest, median and highest listed price at the end of each day (Vietnam time)."""
    drug = await service.get_product(session, registration_no)
    points = await service.price_history(session, drug, days=days)
    return cached_json(
        request,
        HistoryOut(
            registration_no=drug.registration_no,
            declared_price=drug.declared_price,
            points=[
                HistoryPoint(date=p.day.isoformat(), min=p.min, median=p.median, max=p.max, outlets=p.outlets)
                for p in points
            ],
        ),
    )


@router.get(
    "/portal/api/v1/drugs/{registration_no:path}",
    response_model=ProductOut,
    tags=API_TAGS,
    responses=ANSWERS,
)
async def get_product(
    request: Request, registration_no: str, session: ReadSessionDep, province: ProvinceQuery = None
) -> Response:
    """The product, its declared price, price statistics across outlets and cheaper alternatives."""
    view = await service.product_view(session, registration_no, province=province)
    return cached_json(request, product_out(view))


@router.get(
    "/portal/api/v1/outlets/{outlet_id}",
    response_model=OutletOut,
    tags=API_TAGS,
    responses=ANSWERS,
)
async def get_outlet(
    request: Request,
    outlet_id: Annotated[RowId, Path()],
    session: ReadSessionDep,
    sort: Annotated[PriceSort, Query()] = PriceSort.PRICE,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """An outlet and the prices it lists."""
    view = await service.outlet_view(session, outlet_id, sort=sort, limit=limit, offset=offset)
    return cached_json(
        request,
        OutletOut(
            **outlet_detail(view.outlet).model_dump(),
            total=view.total,
            items=[
                OutletListingOut(
                    drug=drug_ref(r.drug),
                    price=r.listing.price,
                    unit=r.listing.unit,
                    updated_at=vn_time(r.listing.updated_at),
                    declared_price=r.drug.declared_price,
                    above_declared=r.drug.declared_price is not None
                    and r.listing.price > r.drug.declared_price,
                )
                for r in view.rows
            ],
            limit=limit,
            offset=offset,
        ),
    )
