"""The prescriber console: sign in as a facility, pick the prescriber, prescribe and sign in the browser.

The private key never reaches the server: the page creates a non-extractable ECDSA P-256 key
with WebCrypto, keeps it in IndexedDB and signs the compact JWS itself. The server only checks
the session and the CSRF token, then hands the JWS to the same submission as a hospital system's,
so the same rules and the same audit log apply. The pages live in their own modules (the desk,
the paper and cancelling, a patient's earlier prescriptions); this one signs in and out, picks
the prescriber, enrols a key, serves the form's public helpers and assembles the router.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response

from eprescribe.console import desk, paper, patients
from eprescribe.console.common import PREFIX, DeskDep, authenticate, console, page
from eprescribe.prescriptions import service as prescriptions
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import ClientStatus
from kit import web, web_session
from kit.database import SessionDep
from kit.runtime import RuntimeDep
from kit.text import vietnamese_name_key
from kit.throttle import PaceDep

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)

# Read the reference files now, at startup, so no request waits on file IO for them.
prescriptions.load_reference_data()


# ---- signing in and out ----------------------------------------------------------------------


@router.get(f"{PREFIX}/sign-in")
async def sign_in_page(request: Request, signed: DeskDep) -> Response:
    """Show the facility's sign-in form."""
    if signed is not None:
        return console.redirect(PREFIX)
    return console.sign_in_page(request)


@router.post(f"{PREFIX}/sign-in")
async def sign_in(
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    facility_code: Annotated[str, Form(max_length=16)],
    secret: Annotated[str, Form(max_length=500)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the facility's code and secret (throttled like the token endpoint) and open a session."""
    return await console.sign_in(
        request,
        session,
        runtime,
        pace,
        identifier=facility_code,
        secret=secret,
        csrf_token=csrf_token,
        authenticate=authenticate,
    )


@router.post(f"{PREFIX}/sign-out")
async def sign_out(
    request: Request,
    signed: DeskDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """End the session; the cookie opens nothing afterwards."""
    return await console.sign_out(request, session, signed.signed if signed else None, csrf_token)


# ---- choosing the prescriber -----------------------------------------------------------------


@router.get(f"{PREFIX}/prescribers")
async def prescribers_page(request: Request, signed: DeskDep, session: SessionDep) -> Response:
    """List the facility's active prescribers (in Vietnamese name order), to choose who is prescribing."""
    if signed is None:
        return console.to_sign_in(request)
    everyone = await registry.prescribers_at_facility(session, signed.facility.facility_code)
    active = sorted(
        (p for p in everyone if p.status == ClientStatus.ACTIVE),
        key=lambda p: vietnamese_name_key(p.full_name),
    )
    return page(
        request,
        "prescribers.html",
        signed,
        "prescribers",
        {
            "prescribers": active,
            "choose_url": f"{PREFIX}/prescribers",
            "enrol_url": f"{PREFIX}/enrol",
            "js_text": console.js_text(request),
        },
    )


@router.post(f"{PREFIX}/prescribers")
async def choose_prescriber(
    request: Request,
    signed: DeskDep,
    session: SessionDep,
    prescriber_id: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Act as one prescriber of the facility from now on (403 for anyone else's id)."""
    if signed is None:
        return console.to_sign_in(request)
    web_session.check_csrf(request, signed.signed.row, csrf_token)
    prescriber = await registry.active_prescriber_at(session, signed.facility.facility_code, prescriber_id)
    await web_session.choose_prescriber(session, signed.signed.row, prescriber.prescriber_id)
    return console.redirect(PREFIX)


# ---- key enrolment -------------------------------------------------------------------------


@router.get(f"{PREFIX}/enrol")
async def enrol_page(request: Request, signed: DeskDep) -> Response:
    """Create a signing key in this browser and show its public JWK for the health department."""
    if signed is None:
        return console.to_sign_in(request)
    prescriber = signed.prescriber
    registered = {k: prescriber.public_jwk.get(k) for k in ("kty", "crv", "x", "y")} if prescriber else None
    return page(
        request,
        "enrol.html",
        signed,
        "enrol",
        {
            "page": {
                "registered_jwk": registered,
                "prescriber_id": prescriber.prescriber_id if prescriber else None,
            },
            "js_text": console.js_text(request),
        },
    )


# ---- public helpers of the form -------------------------------------------------------------


@router.get("/console/api/icd10")
async def icd10(q: Annotated[str, Query(max_length=100)] = "") -> JSONResponse:
    """Search ICD-10 by code or by name, with or without diacritics (public, cacheable)."""
    return JSONResponse(
        {"items": await prescriptions.search_diagnoses(q)}, headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/console/api/policy")
async def policy() -> JSONResponse:
    """Serve the prescribing limits and the chronic list the form checks as the prescriber types."""
    return JSONResponse(prescriptions.policy_for_forms(), headers={"Cache-Control": "public, max-age=3600"})


router.include_router(desk.router)
router.include_router(paper.router)
router.include_router(patients.router)
