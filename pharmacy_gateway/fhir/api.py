"""Routes of the gateway's FHIR export."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kit.errors import ERRORS
from pharmacy_gateway.deps import PharmacyCallDep
from pharmacy_gateway.fhir import service

router = APIRouter(prefix="/gateway/v1", tags=["FHIR R4"])
FHIR_JSON = "application/fhir+json"


@router.get(
    "/dispenses/{dispense_id}/fhir",
    responses={200: {"content": {FHIR_JSON: {}}}, **ERRORS},
)
async def dispense_as_fhir(dispense_id: str, call: PharmacyCallDep) -> JSONResponse:
    """One of this pharmacy's dispenses as a FHIR R4 Bundle: a MedicationDispense per line."""
    bundle = await service.dispense_fhir(
        call.session, pharmacy=call.pharmacy, dispense_id=dispense_id, address=call.address
    )
    return JSONResponse(bundle, media_type=FHIR_JSON)
