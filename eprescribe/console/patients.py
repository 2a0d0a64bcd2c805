"""A patient's earlier prescriptions at this facility: found by citizen ID, insurance number, or
name and date of birth; each listed one is written to the access log and can be written again
(renewed), corrected (replaced) or cancelled from here."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from eprescribe.console.common import PREFIX, DeskDep, console, page, words
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.schemas import PrescriptionStatus
from kit import web_session
from kit.database import SessionDep
from kit.runtime import client_address
from kit.text import vietnamese_sort_key
from kit.time import VIETNAM_TIME, parse_day

router = APIRouter()

NATIONAL_ID = re.compile(r"^[0-9]{12}$")
INSURANCE_NO = re.compile(r"^[A-Z]{2}[0-9]{13}$")
SEARCH_FIELDS = ("national_id", "insurance_no", "name")


def _blank() -> dict[str, str]:
    return {"by": "national_id", "national_id": "", "insurance_no": "", "full_name": "", "date_of_birth": ""}


@router.get(f"{PREFIX}/patients")
async def patients_page(request: Request, desk: DeskDep) -> Response:
    """The search form. Identity numbers are sent in a form body, never in an address."""
    if desk is None:
        return console.to_sign_in(request)
    return page(request, "patients.html", desk, "patients", {"form": _blank(), "results": None, "errors": {}})


@router.post(f"{PREFIX}/patients")
async def search_patient(
    request: Request,
    desk: DeskDep,
    session: SessionDep,
    by: Annotated[str, Form(max_length=20)] = "national_id",
    national_id: Annotated[str, Form(max_length=40)] = "",
    insurance_no: Annotated[str, Form(max_length=40)] = "",
    full_name: Annotated[str, Form(max_length=300)] = "",
    date_of_birth: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Find this facility's prescriptions of one patient; every one shown is in the access log."""
    if desk is None:
        return console.to_sign_in(request)
    web_session.check_csrf(request, desk.signed.row, csrf_token)
    t = words(request)
    form = {
        "by": by if by in SEARCH_FIELDS else "national_id",
        "national_id": national_id.strip().replace(" ", ""),
        "insurance_no": insurance_no.strip().replace(" ", "").upper(),
        "full_name": " ".join(full_name.split()),
        "date_of_birth": date_of_birth.strip(),
    }
    errors: dict[str, str] = {}
    query = prescriptions.PatientQuery()
    if form["by"] == "national_id":
        if NATIONAL_ID.match(form["national_id"]):
            query = prescriptions.PatientQuery(national_id=form["national_id"])
        else:
            errors["national_id"] = t("console.js.national_id_format")
    elif form["by"] == "insurance_no":
        if INSURANCE_NO.match(form["insurance_no"]):
            query = prescriptions.PatientQuery(insurance_no=form["insurance_no"])
        else:
            errors["insurance_no"] = t("console.js.insurance_format")
    else:
        born = parse_day(form["date_of_birth"])
        if not form["full_name"]:
            errors["full_name"] = t("console.js.required")
        if born is None:
            errors["date_of_birth"] = t("console.patients.dob_format")
        if not errors:
            query = prescriptions.PatientQuery(full_name=form["full_name"], date_of_birth=born)
    results: list[dict[str, Any]] | None = None
    if not errors:
        found = await prescriptions.patient_history(
            session, desk.facility, query, address=client_address(request)
        )
        now = datetime.now(VIETNAM_TIME)
        results = [
            {
                "record": p,
                "status": p.status_at(now),
                "replaceable": p.status_at(now) == PrescriptionStatus.ACTIVE,
                "url": f"{PREFIX}/prescriptions/{p.code}",
            }
            for p in found
        ]
        # Several people may answer a name search: group them the way a Vietnamese list reads.
        results.sort(
            key=lambda r: (
                vietnamese_sort_key(r["record"].patient.full_name),
                -r["record"].issued_at.timestamp(),
            )
        )
    return page(
        request,
        "patients.html",
        desk,
        "patients",
        {"form": form, "results": results, "errors": errors},
        status_code=422 if errors else 200,
    )
