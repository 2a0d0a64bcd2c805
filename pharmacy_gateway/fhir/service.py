"""A pharmacy's own dispense as FHIR MedicationDispense resources; read through the dispensing service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.national.stored import StoredDispense, StoredDispenseLine
from eprescribe.prescriptions import service as prescriptions
from eprescribe.registry.schemas import PharmacyRecord
from kit import audit
from kit.audit import AccessAction, ActorKind
from kit.time import utcnow
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.fhir.dispense import dispense_bundle
from pharmacy_gateway.national.stored import stored_from_record


async def dispense_fhir(
    session: AsyncSession, *, pharmacy: PharmacyRecord, dispense_id: str, address: str
) -> dict[str, Any]:
    """Export one of this pharmacy's own dispenses (another's is 404); the read is in the access log."""
    view = await dispensing.own_dispense(session, pharmacy=pharmacy, dispense_id=dispense_id)
    found = await prescriptions.find(session, view.prescription_code)
    assert found is not None  # a dispense always belongs to a stored prescription
    await audit.record_access(
        session,
        prescription_code=found.code,
        actor_kind=ActorKind.PHARMACY,
        actor_code=pharmacy.connection_code,
        action=AccessAction.READ_FHIR,
        client_address=address,
    )
    now = utcnow()
    stored = stored_from_record(
        found, status=found.status_at(now), line_ids=await prescriptions.line_ids(session, found), brands={}
    )
    dispense = StoredDispense(
        dispense_id=view.dispense_id,
        created_at=datetime.fromisoformat(view.created_at),
        pharmacy_code=pharmacy.connection_code,
        pharmacy_name=pharmacy.name,
        pharmacist_name=view.pharmacist.full_name,
        pharmacist_license_no=view.pharmacist.license_no,
        lines=tuple(
            StoredDispenseLine(
                position=position,
                line_no=line.line_no,
                registration_no=line.registration_no,
                quantity=line.quantity,
                batch_no=line.batch_no,
                expiry_date=line.expiry_date,
                unit_price=line.unit_price,
            )
            for position, line in enumerate(view.items, start=1)
        ),
        voided_at=datetime.fromisoformat(view.voided_at) if view.voided_at else None,
        void_reason=view.void_reason,
    )
    return dispense_bundle(stored, dispense, exported_at=now)
