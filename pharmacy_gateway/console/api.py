"""The pharmacist console: sign in with the connection code, scan or type, dispense, void, publish prices.

Everything goes through the gateway's services exactly as the gateway API does (the access
log, throttling of unknown codes, idempotent dispensing), with a browser session instead of a
bearer token. Camera frames the browser cannot decode itself are decoded here with zxing-cpp,
in a thread, and never stored. The pages live in their own modules: the counter, the day's
sales (receipts and voids) and the price list; this one signs in and out and assembles them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from kit import web
from kit.database import SessionDep
from kit.runtime import RuntimeDep
from kit.throttle import PaceDep
from pharmacy_gateway.console import counter, pricelist, sales
from pharmacy_gateway.console.common import PREFIX, CounterDep, authenticate, console

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)


@router.get(f"{PREFIX}/sign-in")
async def sign_in_page(request: Request, signed: CounterDep) -> Response:
    """Show the pharmacy's sign-in form."""
    if signed is not None:
        return console.redirect(PREFIX)
    return console.sign_in_page(request)


@router.post(f"{PREFIX}/sign-in")
async def sign_in(
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    connection_code: Annotated[str, Form(max_length=32)],
    secret: Annotated[str, Form(max_length=500)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the connection code and secret (throttled like the gateway's token endpoint)."""
    return await console.sign_in(
        request,
        session,
        runtime,
        pace,
        identifier=connection_code,
        secret=secret,
        csrf_token=csrf_token,
        authenticate=authenticate,
    )


@router.post(f"{PREFIX}/sign-out")
async def sign_out(
    request: Request,
    signed: CounterDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """End the session; the cookie opens nothing afterwards."""
    return await console.sign_out(request, session, signed, csrf_token)


router.include_router(counter.router)
router.include_router(sales.router)
router.include_router(pricelist.router)
