"""What every page of the pharmacist console shares: the console, its session, names and words."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit import web
from kit.console import Console, NavItem, Signed, SignInForm
from kit.runtime import Runtime
from kit.security import ClientKind, Principal
from kit.throttle import Pace
from kit.web_session import SessionKind
from pharmacy_gateway.dispensing.schemas import DispenseView

PACKAGE = Path(__file__).parent
PREFIX = "/console/pharmacy"
MESSAGES = web.load_messages(PACKAGE / "messages.json")
web.register_static("pharmacy", PACKAGE / "static")


async def authenticate(
    session: AsyncSession, runtime: Runtime, code: str, secret: str, address: str, pace: Pace
) -> Principal:
    return await registry.authenticate(
        session,
        runtime,
        ClientKind.PHARMACY,
        code,
        secret,
        address=address,
        pace=pace,
        answered_with_page=True,
    )


console: Console[PharmacyRecord] = Console(
    prefix=PREFIX,
    kind=SessionKind.PHARMACIST,
    site=web.Site(PACKAGE / "templates"),
    messages=MESSAGES,
    js_prefix="pharm.js.",
    nav=[
        NavItem("desk", "", "pharm.nav.desk"),
        NavItem("dispenses", "/dispenses", "pharm.nav.dispenses"),
        NavItem("prices", "/prices", "pharm.nav.prices"),
    ],
    sign_in_form=SignInForm(
        heading="pharm.signin.title",
        intro="pharm.signin.intro",
        id_label="pharm.signin.code",
        id_name="connection_code",
        id_hint="pharm.signin.code.hint",
        id_max_length=32,
        credential_label="pharm.signin.secret",
        submit="pharm.signin.submit",
        wrong="pharm.signin.wrong",
        throttled="pharm.signin.throttled",
    ),
    load_client=registry.current_pharmacy,
    after_sign_in=PREFIX,
    layout="pharmacy_base.html",
)
Counter = Signed[PharmacyRecord]
CounterDep = Annotated[Counter | None, Depends(console.current)]


def lang_of(request: Request) -> str:
    return web.choose_language(request).lang


def words(request: Request) -> Callable[..., str]:
    """The message catalogue in the visitor's language."""
    return web.MESSAGES.translator(lang_of(request))


async def product_names(session: AsyncSession, views: Sequence[DispenseView]) -> dict[str, str]:
    """Brand names of the products in these dispenses, by registration number."""
    numbers = sorted({line.registration_no for v in views for line in v.items})
    products = await catalogue.products_by_registration(session, numbers)
    return {number: product.name for number, product in products.items()}
