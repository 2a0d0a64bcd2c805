"""Routes of the public price portal: the JSON API under /portal/api/v1 and the HTML pages."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel

from eprescribe.models import Drug, Pharmacy
from eprescribe.schemas import vn_time
from erx import web
from erx.database import SessionDep
from erx.errors import PROBLEM_JSON, InvalidContent, NotFound
from erx.runtime import RuntimeDep
from price_portal import charts, service
from price_portal.messages import MESSAGES
from price_portal.schemas import (
    AlternativeOut,
    Category,
    DrugRef,
    HistoryOut,
    HistoryPoint,
    OutletDetail,
    OutletKind,
    OutletListingOut,
    OutletOut,
    OutletPriceOut,
    OutletPricePage,
    OutletRef,
    PricePage,
    PriceRowOut,
    PriceSort,
    PriceStats,
    ProductOut,
)

PACKAGE = Path(__file__).parent
web.MESSAGES.add(MESSAGES)
web.register_static("portal", PACKAGE / "static")
site = web.Site(PACKAGE / "templates")

router = APIRouter()
router.include_router(web.static_router)

PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
NOT_MODIFIED: dict[str, Any] = {"description": "Not modified (the `If-None-Match` ETag still matches)"}
ANSWERS: dict[int | str, dict[str, Any]] = {404: PROBLEM, 422: PROBLEM, 304: NOT_MODIFIED}
API_TAGS: list[str | Any] = ["price portal"]
MAX_LIMIT = 100
MAX_OFFSET = 10_000
# Listings change when pharmacies publish; a minute of staleness lets caches carry the load.
JSON_MAX_AGE = 60
CSV_MAX_AGE = 300
PAGE_SIZE = 20
OUTLETS_PAGE_SIZE = 25
POPULAR = ["paracetamol", "thuốc ho", "amoxicillin", "vitamin C", "omeprazol", "bổ phế"]
CATEGORIES = ["normal", "traditional", "supplement"]
SORTS = ("price", "-price", "updated")
KINDS = ("pharmacy", "drugstore", "cabinet")
ALL_CATEGORIES = ("normal", "narcotic", "psychotropic", "precursor", "traditional", "supplement")

Q = Annotated[
    str | None, Query(max_length=200, description="Brand, active ingredient or registration number")
]
Province = Annotated[str | None, Query(pattern=r"^[0-9]{2}$", description="Two-digit province code")]
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


def drug_ref(drug: Drug) -> DrugRef:
    return DrugRef(
        registration_no=drug.registration_no,
        name=drug.name,
        active_ingredient=drug.active_ingredient,
        strength=drug.strength,
        dosage_form=drug.dosage_form,
        category=drug.category,
    )


def outlet_ref(outlet: Pharmacy) -> OutletRef:
    assert outlet.id is not None
    return OutletRef(
        id=outlet.id,
        name=outlet.name,
        kind=outlet.kind,
        address=outlet.address,
        province_code=outlet.province_code,
    )


def outlet_detail(outlet: Pharmacy) -> OutletDetail:
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
    session: SessionDep,
    q: Q = None,
    province: Province = None,
    category: Annotated[Category | None, Query()] = None,
    kind: Annotated[OutletKind | None, Query(description="Outlet kind")] = None,
    sort: Annotated[PriceSort, Query()] = "price",
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
    province: Province = None,
    category: Annotated[Category | None, Query()] = None,
    kind: Annotated[OutletKind | None, Query()] = None,
    sort: Annotated[PriceSort, Query()] = "price",
) -> StreamingResponse:
    """The same rows as open data (every page at once), streamed as CSV."""
    query = service.PriceQuery(q, province, category, kind, sort, limit=0, offset=0)
    return StreamingResponse(
        service.export_csv(runtime.database, query),
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
    session: SessionDep,
    province: Province = None,
    kind: Annotated[OutletKind | None, Query()] = None,
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
    session: SessionDep,
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
    request: Request, registration_no: str, session: SessionDep, province: Province = None
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
    outlet_id: int,
    session: SessionDep,
    sort: Annotated[PriceSort, Query()] = "price",
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


# ---- pages -------------------------------------------------------------------------------
# Pages read their query leniently: a hand-edited URL shows the nearest sensible page, not a
# JSON error.


def _pick(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def _province(value: str | None) -> str | None:
    return value if value and len(value) == 2 and value.isdigit() else None


def _page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or "1"), MAX_OFFSET // PAGE_SIZE + 1))
    except ValueError:
        return 1


def _coordinate(value: str | None, bound: float) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and -bound <= number <= bound else None


def _common(session_provinces: dict[str, service.Province], lang: str) -> dict[str, Any]:
    return {
        "provinces": sorted(session_provinces.values(), key=lambda p: p.name(lang)),
        "province_names": {code: p.name(lang) for code, p in session_provinces.items()},
        "categories": ALL_CATEGORIES,
        "kinds": KINDS,
        "sorts": SORTS,
        "min_paid_sales": service.MIN_PAID_SALES,
    }


def _not_found(request: Request, message: str) -> HTMLResponse:
    t = web.MESSAGES.translator(web.choose_language(request).lang)
    return site.render(
        request,
        "error.html",
        {"heading": t("web.not_found"), "message": message, "home": "/"},
        status_code=404,
        cache_seconds=0,
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request) -> HTMLResponse:
    """The search form, popular searches and where the prices come from."""
    lang = web.choose_language(request).lang
    context = _common(service.provinces(), lang) | {
        "popular": POPULAR,
        "featured_categories": CATEGORIES,
        "form": {"q": "", "province": None, "category": None, "kind": None, "sort": "price"},
    }
    return site.render(request, "index.html", context, cache_seconds=300)


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
async def search_page(
    request: Request,
    session: SessionDep,
    q: str | None = None,
    province: str | None = None,
    category: str | None = None,
    kind: str | None = None,
    sort: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """Search results: matching products and their prices by outlet, paginated."""
    lang = web.choose_language(request).lang
    q = (q or "").strip()[:200]
    number = _page_number(page)
    query = service.PriceQuery(
        q or None,
        _province(province),
        _pick(category, ALL_CATEGORIES),
        _pick(kind, KINDS),
        _pick(sort, SORTS) or "price",
        PAGE_SIZE,
        (number - 1) * PAGE_SIZE,
    )
    form = {
        "q": q,
        "province": query.province,
        "category": query.category,
        "kind": query.kind,
        "sort": query.sort,
    }
    results = await service.search_prices(session, query)
    stats: dict[int, tuple[int, int]] = {}
    products = results.products[:6]
    if products:
        stats = await service.lowest_prices(session, products, province=query.province)
    api_params = {k: v for k, v in form.items() if v}
    context = _common(service.provinces(), lang) | {
        "form": form,
        "results": results,
        "products": products,
        "product_stats": stats,
        "more_products": max(0, len(results.products) - len(products)),
        "page": number,
        "pages": max(1, math.ceil(min(results.total, MAX_OFFSET + PAGE_SIZE) / PAGE_SIZE)),
        "csv_url": "/portal/api/v1/prices.csv?" + urlencode(api_params),
        "json_url": "/portal/api/v1/prices?" + urlencode(api_params),
    }
    return site.render(request, "search.html", context)


@router.get("/products/{registration_no:path}/history.svg", include_in_schema=False)
async def product_chart(request: Request, registration_no: str, session: SessionDep) -> Response:
    """The price history chart alone, as an SVG image (to embed or share)."""
    lang = web.choose_language(request).lang
    drug = await service.get_product(session, registration_no)
    svg = _chart(await service.price_history(session, drug), drug, lang)
    if not svg:
        raise NotFound("No price history for this product yet")
    return Response(
        svg,
        media_type="image/svg+xml; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={JSON_MAX_AGE}", "Vary": "Accept-Language, Cookie"},
    )


@router.get("/products/{registration_no:path}", response_class=HTMLResponse, include_in_schema=False)
async def product_page(
    request: Request,
    registration_no: str,
    session: SessionDep,
    province: str | None = None,
    lat: str | None = None,
    lon: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """A product: statistics, declared price, history chart, outlets and cheaper alternatives."""
    lang = web.choose_language(request).lang
    t = web.MESSAGES.translator(lang)
    try:
        view = await service.product_view(session, registration_no, province=_province(province))
    except NotFound:
        return _not_found(request, t("portal.not_found.product", registration_no=registration_no))
    latitude, longitude = _coordinate(lat, 90), _coordinate(lon, 180)
    near = (latitude, longitude) if latitude is not None and longitude is not None else None
    number = _page_number(page)
    outlets = await service.outlets_for_product(
        session,
        view.drug,
        province=_province(province),
        near=near,
        limit=OUTLETS_PAGE_SIZE,
        offset=(number - 1) * OUTLETS_PAGE_SIZE,
    )
    points = await service.price_history(session, view.drug)
    chart = _chart(points, view.drug, lang)
    context = _common(service.provinces(), lang) | {
        "drug": view.drug,
        "stats": view.stats,
        "alternatives": view.alternatives,
        "outlets": outlets,
        "near": near,
        "form": {"province": _province(province), "lat": lat or "", "lon": lon or ""},
        "chart": chart,
        "weekly": points[::-7][::-1] if points else [],
        "history_days": service.HISTORY_DAYS,
        "page": number,
        "pages": max(1, math.ceil(outlets.total / OUTLETS_PAGE_SIZE)),
        "json_url": f"/portal/api/v1/drugs/{quote(registration_no)}",
    }
    return site.render(request, "product.html", context)


def _chart(points: list[service.DayStats], drug: Drug, lang: str) -> str:
    if not points:
        return ""
    t = web.MESSAGES.translator(lang)

    def money(v: int) -> str:
        return web.format_money(v, lang)

    def day(d: Any) -> str:
        return web.format_day(d, lang)

    summary = t(
        "portal.history.summary",
        start=day(points[0].day),
        end=day(points[-1].day),
        first=money(points[0].median),
        last=money(points[-1].median),
        low=money(min(p.min for p in points)),
        high=money(max(p.max for p in points)),
    )
    text = charts.ChartText(
        title=t("portal.history.title", days=service.HISTORY_DAYS) + f" · {drug.name}",
        summary=summary,
        median=t("portal.history.median"),
        band=t("portal.history.band"),
        declared=t("portal.declared"),
    )
    return charts.history_chart(points, declared_price=drug.declared_price, text=text, money=money, day=day)


@router.get("/outlets/{outlet_id}", response_class=HTMLResponse, include_in_schema=False)
async def outlet_page(
    request: Request, outlet_id: str, session: SessionDep, sort: str | None = None, page: str | None = None
) -> HTMLResponse:
    """An outlet and its price list."""
    lang = web.choose_language(request).lang
    t = web.MESSAGES.translator(lang)
    number = _page_number(page)
    chosen = _pick(sort, SORTS) or "price"
    try:
        view = await service.outlet_view(
            session, int(outlet_id), sort=chosen, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
    except (NotFound, ValueError):
        return _not_found(request, t("portal.not_found.outlet"))
    context = _common(service.provinces(), lang) | {
        "outlet": view.outlet,
        "view": view,
        "form": {"sort": chosen},
        "page": number,
        "pages": max(1, math.ceil(view.total / PAGE_SIZE)),
        "json_url": f"/portal/api/v1/outlets/{outlet_id}",
    }
    return site.render(request, "outlet.html", context)
