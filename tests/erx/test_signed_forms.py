"""Stored signatures verify in the form their door signed: the contract's payload, the QĐ 808 body,
a FHIR Bundle; legacy unsigned prescriptions are counted apart, and a marker at odds with its JWS
is caught (issue 11: `erx audit verify --signatures`, `erx restore`)."""

from __future__ import annotations

import asyncio
import json
import secrets
from base64 import urlsafe_b64decode
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from eprescribe.fhir import service as fhir
from eprescribe.national import service as national
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.models import Prescription
from erx.integrity import SIGNED_FORMS
from tests.clients import erx, erx_command
from tests.conftest import ENGINES, Harness, HarnessFactory, make_settings
from tests.eprescribe.fhir.helpers import fhir_of, fresh_copy, submit_bundle
from tests.eprescribe.national.http import Clinic, clinic, doctor_token, his_body, send, signed
from tests.factories import World, payload_for, prescribe, sign
from tests.pg import Cluster

ALL_VERIFY = "3 prescriptions verify with their prescribers' keys (contract 1, QĐ 808 1, FHIR 1)"
ONE_UNSIGNED = (
    "1 unsigned legacy prescription, admitted by ERX_NATIONAL_ACCEPT_UNSIGNED, has no signature to verify"
)


@pytest.fixture(params=ENGINES)
async def legacy(request: pytest.FixtureRequest, make_harness: HarnessFactory) -> Harness:
    """Both engines, admitting unsigned national submissions (ERX_NATIONAL_ACCEPT_UNSIGNED)."""
    return await make_harness(str(request.param), national_accept_unsigned=True)


@dataclass
class Doors:
    """One prescription through each door: contract, FHIR, QĐ 808 signed, QĐ 808 unsigned."""

    contract: str
    fhir: str
    national: str
    unsigned: str
    world: World
    clinic: Clinic
    token: str


async def national_one(harness: Harness, c: Clinic, token: str, *, unsigned: bool = False) -> str:
    body = his_body(c) if unsigned else signed(his_body(c), c.doctor)
    r = await send(harness.client, token, body)
    assert r.status_code == 200, r.text
    code: str = body["ma_don_thuoc"]
    return code


async def through_every_door(harness: Harness, *, unsigned: bool = True) -> Doors:
    w = await harness.api.world()
    contract = await prescribe(harness.api, w)
    bundle = fresh_copy(await fhir_of(harness.api, w, contract), w.facility.facility_code, "c")
    r = await submit_bundle(harness.api, w, bundle)
    assert r.status_code == 201, r.text
    c = await clinic(harness.api)
    token = await doctor_token(harness.client, c)
    national_code = await national_one(harness, c, token)
    legacy_code = await national_one(harness, c, token, unsigned=True) if unsigned else ""
    return Doors(contract, r.json()["code"], national_code, legacy_code, w, c, token)


async def check(harness: Harness) -> prescriptions.StoredCheck:
    async with harness.runtime.database.sessionmaker() as session, session.begin():
        # Batches of two, so the stream crosses batches with every form in it.
        return await prescriptions.check_stored_signatures(session, forms=SIGNED_FORMS, batch=2)


async def bad_of(harness: Harness) -> dict[str, str]:
    return {b.code: b.reason for b in (await check(harness)).bad}


async def change(harness: Harness, code: str, **values: Any) -> None:
    """Edit a stored prescription behind the app's back (the JWS encrypted as its column stores it)."""
    async with harness.runtime.database.sessionmaker() as session, session.begin():
        await session.execute(update(Prescription).where(col(Prescription.code) == code).values(**values))


def signed_payload(compact: str) -> dict[str, Any]:
    part = compact.split(".")[1]
    payload: dict[str, Any] = json.loads(urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return payload


async def stored_jws(harness: Harness, code: str) -> str:
    async with harness.runtime.database.sessionmaker() as session:
        found = await session.execute(select(Prescription.jws).where(col(Prescription.code) == code))  # type: ignore[call-overload]
        jws: str = found.scalar_one()
        return jws


class TestEveryDoorVerifies:
    async def test_signed_ones_verify_in_their_form_and_unsigned_ones_are_counted(
        self, legacy: Harness
    ) -> None:
        await through_every_door(legacy)
        found = await check(legacy)
        assert found.bad == []
        assert (found.checked, found.unsigned) == (4, 1)
        assert dict(found.verified) == {"contract": 1, "QĐ 808": 1, "FHIR": 1}
        done = await erx(legacy, "audit", "verify", "--signatures", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr
        assert ALL_VERIFY in done.stdout
        assert ONE_UNSIGNED in done.stdout

    async def test_several_unsigned_are_counted_in_the_plural(self, legacy: Harness) -> None:
        doors = await through_every_door(legacy)
        await national_one(legacy, doors.clinic, doors.token, unsigned=True)
        done = await erx(legacy, "audit", "verify", "--signatures", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr
        assert (
            "2 unsigned legacy prescriptions, admitted by ERX_NATIONAL_ACCEPT_UNSIGNED, have no"
            in done.stdout
        )

    async def test_each_form_is_told_apart_by_what_it_alone_may_carry(self, harness: Harness) -> None:
        doors = await through_every_door(harness, unsigned=False)
        payloads = {
            code: signed_payload(await stored_jws(harness, code))
            for code in (doors.contract, doors.fhir, doors.national)
        }
        recognised = {
            code: [form.name for form in SIGNED_FORMS if form.recognises(p)] for code, p in payloads.items()
        }
        assert recognised == {doors.contract: [], doors.fhir: ["FHIR"], doors.national: ["QĐ 808"]}
        # Which holds because each door refuses the fields that tell the others apart.
        w = doors.world
        extra = payload_for(w) | {"loai_don_thuoc": "c"}
        r = await harness.api.submit(w.facility, sign(extra, w.prescriber.key, w.prescriber.prescriber_id))
        assert r.status_code == 422, r.text
        bundle = fresh_copy(await fhir_of(harness.api, w, doors.contract), w.facility.facility_code, "c")
        r = await submit_bundle(harness.api, w, bundle | {"loai_don_thuoc": "c"})
        assert r.status_code == 422, r.text

    async def test_the_forms_read_facility_kind_and_code_as_their_doors_did(self, harness: Harness) -> None:
        doors = await through_every_door(harness, unsigned=False)
        for code, form in ((doors.national, national.SIGNED_FORM), (doors.fhir, fhir.SIGNED_FORM)):
            facts = form.facts(signed_payload(await stored_jws(harness, code)))
            assert (facts.facility_code, facts.kind, facts.code) == (code[:5], "c", code)


class TestTamperingIsCaught:
    async def test_a_national_signature_broken_is_caught(self, harness: Harness) -> None:
        doors = await through_every_door(harness, unsigned=False)
        head, payload, signature = (await stored_jws(harness, doors.national)).split(".")
        flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
        await change(harness, doors.national, jws=f"{head}.{payload}.{flipped}")
        assert await bad_of(harness) == {
            doors.national: "the signature does not verify with the prescriber's key of the time it was received"
        }
        done = await erx(harness, "audit", "verify", "--signatures", "--no-progress")
        assert done.returncode == 1
        assert f"bad signature {doors.national}" in done.stdout
        assert "prescriptions verify" not in done.stdout

    async def test_a_national_jws_swapped_for_another_of_its_doctor_is_caught(self, harness: Harness) -> None:
        doors = await through_every_door(harness, unsigned=False)
        other = await national_one(harness, doors.clinic, doors.token)
        # A genuine signature of the same doctor, over another body.
        await change(harness, doors.national, jws=await stored_jws(harness, other))
        assert await bad_of(harness) == {doors.national: "the signed payload (QĐ 808) names another code"}

    async def test_a_national_prescription_given_another_facility_or_kind_is_caught(
        self, harness: Harness
    ) -> None:
        doors = await through_every_door(harness, unsigned=False)
        elsewhere = await harness.api.facility()
        await change(harness, doors.national, facility_code=elsewhere.facility_code)
        await change(harness, doors.fhir, facility_code=elsewhere.facility_code)
        await change(harness, doors.contract, kind="n")
        assert await bad_of(harness) == {
            doors.national: "the signed payload (QĐ 808) names another facility",
            doors.fhir: "the signed payload (FHIR) names another facility",
            doors.contract: "the signed payload (contract) names another kind",
        }
        await change(harness, doors.national, facility_code=doors.national[:5], kind="h")
        assert (await bad_of(harness))[doors.national] == "the signed payload (QĐ 808) names another kind"

    async def test_an_unsigned_marker_at_odds_with_the_jws_is_caught(self, legacy: Harness) -> None:
        doors = await through_every_door(legacy)
        # The legacy row passed off as signed; a signed row passed off as legacy; a JWS removed.
        await change(legacy, doors.unsigned, unsigned=False)
        await change(legacy, doors.national, unsigned=True)
        await change(legacy, doors.contract, jws="")
        found = await check(legacy)
        assert {b.code: b.reason for b in found.bad} == {
            doors.unsigned: "it holds no signature yet is not marked unsigned",
            doors.national: "it is marked unsigned (a legacy submission) yet holds a signature",
            doors.contract: "it holds no signature yet is not marked unsigned",
        }
        assert found.unsigned == 0
        done = await erx(legacy, "audit", "verify", "--signatures", "--no-progress")
        assert done.returncode == 1
        for code in (doors.unsigned, doors.national, doors.contract):
            assert f"bad signature {code}" in done.stdout


class TestRestore:
    async def test_a_database_with_every_door_restores_and_verifies(
        self, legacy: Harness, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        doors = await through_every_door(legacy)
        archive = tmp_path / "erx.backup"
        done = await erx(legacy, "backup", str(archive))
        assert done.returncode == 0, done.stdout + done.stderr
        key = legacy.settings.identity_key
        identity_key = key.get_secret_value() if key is not None else None
        name = f"erx_restore_{secrets.token_hex(4)}"
        if legacy.engine == "postgresql":
            cluster: Cluster = request.getfixturevalue("pg_cluster")
            await cluster.execute(f'CREATE DATABASE "{name}"')
            fresh = make_settings(tmp_path / "fresh", cluster.url(name), identity_key=identity_key)
        else:
            fresh = make_settings(tmp_path / "fresh", None, identity_key=identity_key)
        try:
            restored = await asyncio.to_thread(erx_command, fresh, "restore", str(archive), "--no-progress")
            assert restored.returncode == 0, restored.stdout + restored.stderr
            assert "chains hold" in restored.stdout
            assert ALL_VERIFY in restored.stdout
            assert ONE_UNSIGNED in restored.stdout
            assert "bad signature" not in restored.stdout
            there = Harness(fresh)
            try:
                assert (await check(there)).verified["QĐ 808"] == 1
                assert await stored_jws(there, doors.national) == await stored_jws(legacy, doors.national)
            finally:
                await there.close()
        finally:
            if legacy.engine == "postgresql":
                await cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
