"""FHIR over HTTP: the issuing facility's Bundle export, a signed Bundle submitted, each dispense exported."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.conftest import Harness
from tests.eprescribe.fhir.helpers import fhir_of, fresh_copy, resources, submit_bundle
from tests.factories import (
    KIND_PRODUCT,
    World,
    access_entries,
    dispense_body,
    line,
    prescribe,
    sign,
)

KINDS = ["c", "n", "h", "y", "t"]


class TestExport:
    @pytest.mark.parametrize("kind", KINDS)
    async def test_every_kind_validates_with_fhir_resources(
        self, harness: Harness, world: World, kind: str
    ) -> None:
        code = await prescribe(harness.api, world, kind=kind)
        bundle = await fhir_of(harness.api, world, code)
        Bundle.model_validate(bundle)
        requests = resources(bundle, "MedicationRequest")
        assert len(requests) == 1
        assert requests[0]["groupIdentifier"]["value"] == code
        kinds = [
            c["code"]
            for cat in requests[0]["category"]
            for c in cat["coding"]
            if "prescription-kind" in c["system"]
        ]
        assert kinds == [kind]
        assert {"Patient", "Practitioner", "Organization", "PractitionerRole", "Condition"} <= {
            e["resource"]["resourceType"] for e in bundle["entry"]
        }
        patient = resources(bundle, "Patient")[0]
        assert {"system": "https://erx.gov.vn/fhir/sid/cccd", "value": "001180012345"} in patient[
            "identifier"
        ]
        facility = resources(bundle, "Organization")[0]
        assert facility["identifier"][0]["value"] == world.facility.facility_code
        medicine = requests[0]["medicationCodeableConcept"]
        assert world.products[KIND_PRODUCT[kind]].active_ingredient in medicine["text"]

    async def test_another_facility_gets_404_and_the_attempt_is_logged(
        self, harness: Harness, world: World
    ) -> None:
        code = await prescribe(harness.api, world)
        other = await harness.api.facility()
        r = await harness.client.get(f"/api/v1/prescriptions/{code}/fhir", headers=other.headers)
        assert r.status_code == 404
        await fhir_of(harness.api, world, code)
        actions = [(e.actor_code, e.action) for e in await access_entries(harness, code)]
        assert (other.facility_code, "read_fhir_denied") in actions
        assert (world.facility.facility_code, "read_fhir") in actions

    async def test_a_pharmacy_token_is_refused(self, harness: Harness, world: World) -> None:
        code = await prescribe(harness.api, world)
        pharmacy = await harness.api.pharmacy()
        r = await harness.client.get(f"/api/v1/prescriptions/{code}/fhir", headers=pharmacy.headers)
        assert r.status_code == 403


class TestImport:
    @pytest.mark.parametrize("kind", KINDS)
    async def test_an_exported_bundle_signed_again_round_trips(
        self, harness: Harness, world: World, kind: str
    ) -> None:
        original = await prescribe(harness.api, world, kind=kind)
        bundle = fresh_copy(await fhir_of(harness.api, world, original), world.facility.facility_code, kind)
        r = await submit_bundle(harness.api, world, bundle, kind=kind)
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        assert r.json()["status"] == "active"
        first = (
            await harness.client.get(f"/api/v1/prescriptions/{original}", headers=world.facility.headers)
        ).json()
        again = (
            await harness.client.get(f"/api/v1/prescriptions/{code}", headers=world.facility.headers)
        ).json()
        for key in ("kind", "patient", "diagnoses", "notes", "issued_at", "prescriber_id"):
            assert again[key] == first[key], key
        strip = ("dispensed", "remaining")
        assert [{k: v for k, v in i.items() if k not in strip} for i in again["items"]] == [
            {k: v for k, v in i.items() if k not in strip} for i in first["items"]
        ]

        # And its own export names the same patient again (resource ids derive from the code).
        def patient_of(bundle: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in resources(bundle, "Patient")[0].items() if k != "id"}

        assert patient_of(await fhir_of(harness.api, world, code)) == patient_of(
            await fhir_of(harness.api, world, original)
        )

    async def test_the_same_signed_bundle_twice_is_a_replay(self, harness: Harness, world: World) -> None:
        original = await prescribe(harness.api, world)
        bundle = fresh_copy(await fhir_of(harness.api, world, original), world.facility.facility_code, "c")
        jws = sign(bundle, world.prescriber.key, world.prescriber.prescriber_id)
        first = await harness.client.post(
            "/api/v1/prescriptions/fhir", json={"jws": jws}, headers=world.facility.headers
        )
        assert first.status_code == 201, first.text
        again = await harness.client.post(
            "/api/v1/prescriptions/fhir", json={"jws": jws}, headers=world.facility.headers
        )
        assert again.status_code == 409

    async def test_a_broken_rule_is_refused_like_any_prescription(
        self, harness: Harness, world: World
    ) -> None:
        original = await prescribe(harness.api, world)
        bundle = fresh_copy(await fhir_of(harness.api, world, original), world.facility.facility_code, "c")
        resources(bundle, "MedicationRequest")[0]["dispenseRequest"]["expectedSupplyDuration"]["value"] = 45
        r = await submit_bundle(harness.api, world, bundle)
        assert r.status_code == 422
        assert any(e["loc"][-1] == "days_supply" for e in r.json()["errors"])

    async def test_a_bundle_that_is_not_a_prescription_gets_an_operation_outcome(
        self, harness: Harness, world: World
    ) -> None:
        r = await submit_bundle(
            harness.api, world, {"resourceType": "Bundle", "type": "collection", "entry": []}
        )
        assert r.status_code == 422
        assert r.json()["operation_outcome"]["resourceType"] == "OperationOutcome"

    async def test_a_bundle_signed_by_someone_else_is_refused(self, harness: Harness, world: World) -> None:
        original = await prescribe(harness.api, world)
        bundle = fresh_copy(await fhir_of(harness.api, world, original), world.facility.facility_code, "c")
        jws = sign(bundle, world.controlled_prescriber.key, world.prescriber.prescriber_id)
        r = await harness.client.post(
            "/api/v1/prescriptions/fhir", json={"jws": jws}, headers=world.facility.headers
        )
        assert r.status_code == 400


class TestDispenseExport:
    async def test_each_dispense_is_a_medication_dispense_for_its_pharmacy(
        self, harness: Harness, world: World
    ) -> None:
        product = world.products["normal"]
        code = await prescribe(harness.api, world, items=[product.line(quantity=10)])
        pharmacy = await harness.api.pharmacy()
        headers = {**pharmacy.headers, "Idempotency-Key": secrets.token_hex(8)}
        sold = await harness.client.post(
            f"/gateway/v1/prescriptions/{code}/dispenses",
            json=dispense_body(line(1, product.registration_no, 4, batch_no="L01", unit_price=900)),
            headers=headers,
        )
        assert sold.status_code == 201, sold.text
        dispense_id = sold.json()["dispense_id"]
        r = await harness.client.get(f"/gateway/v1/dispenses/{dispense_id}/fhir", headers=pharmacy.headers)
        assert r.status_code == 200, r.text
        bundle = r.json()
        Bundle.model_validate(bundle)
        (dispense,) = resources(bundle, "MedicationDispense")
        assert dispense["status"] == "completed"
        assert dispense["quantity"]["value"] == 4
        assert dispense["authorizingPrescription"] == [
            {"identifier": {"system": "https://erx.gov.vn/fhir/sid/prescription-line", "value": f"{code}/1"}}
        ]
        patient = resources(bundle, "Patient")[0]
        assert patient["birthDate"] == "1980" and "identifier" not in patient
        assert "001180012345" not in r.text
        other = await harness.api.pharmacy()
        assert (
            await harness.client.get(f"/gateway/v1/dispenses/{dispense_id}/fhir", headers=other.headers)
        ).status_code == 404
        assert (pharmacy.connection_code, "read_fhir") in [
            (e.actor_code, e.action) for e in await access_entries(harness, code)
        ]
        voided = await harness.client.post(
            f"/gateway/v1/dispenses/{dispense_id}/void", json={"reason": "Nhập sai"}, headers=pharmacy.headers
        )
        assert voided.status_code == 200, voided.text
        again = await harness.client.get(
            f"/gateway/v1/dispenses/{dispense_id}/fhir", headers=pharmacy.headers
        )
        assert resources(again.json(), "MedicationDispense")[0]["status"] == "entered-in-error"
