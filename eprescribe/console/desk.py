"""The desk: the prescription form (a fresh one, a renewal or a correction), its submission, the
recent prescriptions, and the session check the form uses to resume after signing in again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.schemas import ProductKey
from eprescribe.console.common import PREFIX, Desk, DeskDep, console, page, require, words
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.exceptions import PrescriptionNotFound
from eprescribe.prescriptions.schemas import PrescriptionStatus, PrescriptionSubmit
from eprescribe.registry.exceptions import PrescriberNotAllowed
from kit import web_session
from kit.audit import AccessAction
from kit.database import SessionDep
from kit.runtime import RuntimeDep, client_address
from kit.time import VIETNAM_TIME

router = APIRouter()

RECENT_LIMIT = 20
Code = Annotated[str | None, Query(max_length=40)]


async def _prefill(session: AsyncSession, found: prescriptions.FacilityRead, mode: str) -> dict[str, Any]:
    """An earlier prescription as the form's starting point: patient, diagnoses and lines.

    A line names its product by registration number when it has one, else the first registered
    product with its ingredient, strength and form; a line no product fits any more is left out
    (and counted, so the page says so).
    """
    p = found.prescription
    numbers = [i.registration_no for i in found.items if i.registration_no]
    named = await catalogue.products_by_registration(session, numbers)
    keys: list[ProductKey] = [
        (i.ingredient_key, i.strength_key, i.form_key)
        for i in found.items
        if not i.registration_no or i.registration_no not in named
    ]
    same = await catalogue.substitutes_by_keys(session, keys) if keys else {}
    lines = []
    for item in found.items:
        product = named.get(item.registration_no or "") or next(
            iter(same.get((item.ingredient_key, item.strength_key, item.form_key), [])), None
        )
        if product is None:
            continue
        lines.append(
            {
                "drug": product.public().model_dump(),
                "quantity": str(item.quantity),
                "unit": item.unit,
                "days_supply": str(item.days_supply),
                "instructions": item.instructions,
                "decoction": p.kind == "t",
            }
        )
    patient = {
        "full_name": p.patient_full_name,
        "date_of_birth": p.patient_date_of_birth.isoformat(),
        "gender": p.patient_gender,
        "national_id": p.patient_national_id or "",
        "insurance_no": p.patient_insurance_no or "",
        "phone": p.patient_phone or "",
        "address": p.patient_address or "",
        "weight_kg": "" if p.patient_weight_kg is None else str(p.patient_weight_kg),
        "guardian": p.guardian or {},
    }
    return {
        "mode": mode,
        "source": p.code,
        "kind": p.kind,
        "issued_at": p.issued_at.astimezone(VIETNAM_TIME).strftime("%d/%m/%Y"),
        "patient": patient,
        "diagnoses": [{"icd10": d["icd10"], "text": d["text"]} for d in p.diagnoses],
        "lines": lines,
        "left_out": len(found.items) - len(lines),
        "notes": p.notes or "",
    }


async def _starting_point(
    request: Request, session: AsyncSession, desk: Desk, renew: str | None, replace: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The prefill a renewal or a correction asks for, or why there is none."""
    code, mode = (replace, "replace") if replace else (renew, "renew")
    if not code:
        return None, None
    t = words(request)
    action = AccessAction.CONSOLE_REPLACE if mode == "replace" else AccessAction.CONSOLE_RENEW
    try:
        found = await prescriptions.read_for_facility(
            session, desk.facility, code, action=action, address=client_address(request)
        )
    except PrescriptionNotFound:
        return None, t("console.prefill.not_found", code=code.strip())
    if mode == "replace" and found.status != PrescriptionStatus.ACTIVE:
        status = t(f"console.status.{found.status}")
        return None, t("console.prefill.not_replaceable", code=found.prescription.code, status=status)
    return await _prefill(session, found, mode), None


@router.get(PREFIX)
async def desk_page(
    request: Request, desk: DeskDep, session: SessionDep, renew: Code = None, replace: Code = None
) -> Response:
    """Show the prescription form (empty, or from an earlier prescription) and the recent ones."""
    if desk is None:
        return console.to_sign_in(request)
    if desk.prescriber is None:
        return console.redirect(f"{PREFIX}/prescribers")
    prescriber = desk.prescriber
    prefill, prefill_error = await _starting_point(request, session, desk, renew, replace)
    context = {
        "prescriber_id": prescriber.prescriber_id,
        "full_name": prescriber.full_name,
        "controlled_allowed": prescriber.controlled_allowed,
        "public_jwk": {k: prescriber.public_jwk.get(k) for k in ("kty", "crv", "x", "y")},
        "facility_code": desk.facility.facility_code,
        "submit_url": f"{PREFIX}/api/prescriptions",
        "print_url": f"{PREFIX}/prescriptions/",
        "recent_url": f"{PREFIX}/recent",
        "session_url": f"{PREFIX}/api/session",
        "icd10_url": "/console/api/icd10",
        "drugs_url": "/api/v1/drugs",
        "enrol_url": f"{PREFIX}/enrol",
        "sign_in_url": f"{PREFIX}/sign-in",
        "prefill": prefill,
    }
    return page(
        request,
        "prescribe.html",
        desk,
        "desk",
        {
            "page": context,
            "prefill": prefill,
            "prefill_error": prefill_error,
            "policy": prescriptions.policy_for_forms(),
            "recent": await _recent(session, desk, client_address(request)),
            "js_text": console.js_text(request),
        },
    )


@router.get(f"{PREFIX}/api/session")
async def session_state(desk: DeskDep) -> JSONResponse:
    """Whether this browser is signed in again, as whom, and the session's CSRF token.

    A form left open across the end of a session asks this after the prescriber signed in again
    in another tab: it then carries on with the new session instead of losing what was typed.
    """
    found = require(desk)
    return JSONResponse(
        {
            "facility_code": found.facility.facility_code,
            "prescriber_id": found.prescriber.prescriber_id if found.prescriber else None,
            "csrf_token": found.signed.row.csrf_token,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post(f"{PREFIX}/api/prescriptions")
async def submit(
    body: PrescriptionSubmit,
    request: Request,
    desk: DeskDep,
    session: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> JSONResponse:
    """Submit a JWS signed in the browser, as the session's facility, through the real rules."""
    found = require(desk)
    web_session.check_csrf(request, found.signed.row)
    if found.prescriber is None:
        raise PrescriberNotAllowed("Choose the prescriber first")
    outcome = await prescriptions.submit(
        session,
        runtime,
        facility=found.facility,
        compact_jws=body.jws,
        idempotency_key=idempotency_key,
        base_url=runtime.settings.public_url,
    )
    answer = dict(outcome.body)
    if "code" in answer:
        answer["print_url"] = f"{PREFIX}/prescriptions/{answer['code']}"
    return JSONResponse(answer, status_code=outcome.status_code)


async def _recent(session: AsyncSession, desk: Desk, address: str) -> list[dict[str, Any]]:
    assert desk.prescriber is not None
    found = await prescriptions.recent_for_prescriber(
        session, desk.facility, desk.prescriber.prescriber_id, RECENT_LIMIT, address=address
    )
    now = datetime.now(VIETNAM_TIME)
    return [
        {
            "code": p.code,
            "kind": p.kind,
            "patient": p.patient.full_name,
            "issued_at": p.issued_at,
            "valid_until": p.valid_until,
            "status": p.status_at(now),
            "url": f"{PREFIX}/prescriptions/{p.code}",
        }
        for p in found
    ]


@router.get(f"{PREFIX}/recent")
async def recent_fragment(request: Request, desk: DeskDep, session: SessionDep) -> HTMLResponse:
    """Render the recent prescriptions with their live status (the desk refreshes this part)."""
    found = require(desk)
    if found.prescriber is None:
        raise PrescriberNotAllowed("Choose the prescriber first")
    return console.site.render(
        request,
        "_recent.html",
        {"recent": await _recent(session, found, client_address(request))},
        cache_seconds=0,
    )
