"""The public price portal's pages: home, search, product and outlet (Vietnamese first).

Pages read their query leniently: a hand-edited URL shows the nearest sensible page, not a
JSON error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from eprescribe.catalogue.schemas import Product
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import Province
from kit import web
from kit.database import ReadSessionDep
from kit.errors import NotFound
from kit.fields import INT_MAX
from pharmacy_gateway.prices.schemas import DayStats
from price_portal import charts, service
from price_portal.schemas import ALL_CATEGORIES, JSON_MAX_AGE, KINDS, MAX_OFFSET, SORTS

PACKAGE = Path(__file__).parent
web.load_messages(PACKAGE / "messages.json")
web.register_static("portal", PACKAGE / "static")
site = web.Site(PACKAGE / "templates")

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)

PAGE_SIZE = 20
# Matched products shown as cards above the prices, best first (the rest are counted).
PRODUCT_CARDS = 6
PRODUCTS_PAGE_SIZE = 48
OUTLETS_PAGE_SIZE = 25
POPULAR = ["paracetamol", "thuốc ho", "amoxicillin", "vitamin C", "omeprazol", "bổ phế"]
CATEGORIES = ["normal", "traditional", "supplement"]


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


def _common(session_provinces: dict[str, Province], lang: str) -> dict[str, Any]:
    return {
        "provinces": sorted(session_provinces.values(), key=lambda p: p.sort_key(lang)),
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
    context = _common(registry.provinces(), lang) | {
        "popular": POPULAR,
        "featured_categories": CATEGORIES,
        "form": {"q": "", "province": None, "category": None, "kind": None, "sort": "price"},
    }
    return site.render(request, "index.html", context, cache_seconds=300)


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
async def search_page(
    request: Request,
    session: ReadSessionDep,
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
        products=PRODUCT_CARDS,
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
    products = results.products
    if products:
        stats = await service.lowest_prices(session, products, province=query.province)
    api_params = {k: v for k, v in form.items() if v}
    context = _common(registry.provinces(), lang) | {
        "form": form,
        "results": results,
        "products": products,
        "product_stats": stats,
        "more_products": max(0, results.matched - len(products)),
        "page": number,
        "pages": max(1, math.ceil(min(results.total, MAX_OFFSET + PAGE_SIZE) / PAGE_SIZE)),
        "products_url": "/products?"
        + urlencode({k: v for k, v in form.items() if v and k in ("q", "category", "province")}),
        "csv_url": "/portal/api/v1/prices.csv?" + urlencode(api_params),
        "json_url": "/portal/api/v1/prices?" + urlencode(api_params),
    }
    return site.render(request, "search.html", context)


@router.get("/products", response_class=HTMLResponse, include_in_schema=False)
async def products_page(
    request: Request,
    session: ReadSessionDep,
    q: str | None = None,
    category: str | None = None,
    province: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """Every product a search names (what "and N more products" opens), with its lowest price."""
    lang = web.choose_language(request).lang
    q = (q or "").strip()[:200]
    chosen_category = _pick(category, ALL_CATEGORIES)
    chosen_province = _province(province)
    found = (
        await service.resolve_products(session, q, chosen_category) if q else service.Resolution([], False)
    )
    number = _page_number(page)
    pages = max(1, math.ceil(len(found.ids) / PRODUCTS_PAGE_SIZE))
    number = min(number, pages)
    shown = await service.products_in_order(
        session, found.ids[(number - 1) * PRODUCTS_PAGE_SIZE : number * PRODUCTS_PAGE_SIZE]
    )
    stats = await service.lowest_prices(session, shown, province=chosen_province) if shown else {}
    form = {"q": q, "province": chosen_province, "category": chosen_category, "kind": None, "sort": "price"}
    context = _common(registry.provinces(), lang) | {
        "form": form,
        "products": shown,
        "product_stats": stats,
        "total": len(found.ids),
        "fuzzy": found.fuzzy,
        "page": number,
        "pages": pages,
        "prices_url": "/search?" + urlencode({k: v for k, v in form.items() if v and k != "sort"}),
    }
    return site.render(request, "products.html", context)


@router.get("/products/{registration_no:path}/history.svg", include_in_schema=False)
async def product_chart(request: Request, registration_no: str, session: ReadSessionDep) -> Response:
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
    session: ReadSessionDep,
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
    context = _common(registry.provinces(), lang) | {
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


def _chart(points: list[DayStats], drug: Product, lang: str) -> str:
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
    request: Request,
    outlet_id: str,
    session: ReadSessionDep,
    sort: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """An outlet and its price list."""
    lang = web.choose_language(request).lang
    t = web.MESSAGES.translator(lang)
    number = _page_number(page)
    chosen = _pick(sort, SORTS) or "price"
    try:
        number_id = int(outlet_id)
        if not 1 <= number_id <= INT_MAX:
            raise ValueError("no such row")
        view = await service.outlet_view(
            session, number_id, sort=chosen, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
    except (NotFound, ValueError):
        return _not_found(request, t("portal.not_found.outlet"))
    context = _common(registry.provinces(), lang) | {
        "outlet": view.outlet,
        "view": view,
        "form": {"sort": chosen},
        "page": number,
        "pages": max(1, math.ceil(view.total / PAGE_SIZE)),
        "json_url": f"/portal/api/v1/outlets/{outlet_id}",
    }
    return site.render(request, "outlet.html", context)
