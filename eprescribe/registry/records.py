"""The registry's rows as the records other code reads, and the random part of new ids."""

from __future__ import annotations

import secrets
import string

from eprescribe.registry.models import Facility, Pharmacy, Prescriber
from eprescribe.registry.schemas import FacilityRecord, PharmacyRecord, PrescriberRecord

ID_ALPHABET = string.digits + string.ascii_uppercase


def random_id(length: int) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def facility_record(facility: Facility) -> FacilityRecord:
    return FacilityRecord(facility.facility_code, facility.name, facility.province_code)


def prescriber_record(prescriber: Prescriber) -> PrescriberRecord:
    return PrescriberRecord(
        prescriber_id=prescriber.prescriber_id,
        full_name=prescriber.full_name,
        license_no=prescriber.license_no,
        public_jwk=prescriber.public_jwk,
        controlled_allowed=prescriber.controlled_allowed,
        status=prescriber.status,
    )


def pharmacy_record(pharmacy: Pharmacy) -> PharmacyRecord:
    assert pharmacy.id is not None
    return PharmacyRecord(
        id=pharmacy.id,
        connection_code=pharmacy.connection_code,
        name=pharmacy.name,
        kind=pharmacy.kind,
        province_code=pharmacy.province_code,
        address=pharmacy.address,
        latitude=pharmacy.latitude,
        longitude=pharmacy.longitude,
        controlled_licence=pharmacy.controlled_licence,
        status=pharmacy.status,
    )
