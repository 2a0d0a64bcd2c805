"""Identity numbers at rest: nothing in clear in the database, lookups by number still work, keys rotate,
and the migration encrypts rows written before it."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from pydantic import SecretStr
from sqlalchemy import inspect, text

from eprescribe.prescriptions.cli import reencrypt_all
from erx.migrate import alembic_config, upgrade_async
from kit.pii import PiiKeys
from tests.clients import Browser, Browsers, erx
from tests.conftest import Harness, HarnessFactory
from tests.factories import Api, World, child_birthdate, payload_for

PATIENTS = "/console/prescriber/patients"
CHILD_NATIONAL_ID = "001219087654"
GUARDIAN_NATIONAL_ID = "001190011223"
INSURANCE_NO = "DN4010112345678"
NATIONAL_ID = "001180012345"
IN_CLEAR = (NATIONAL_ID, INSURANCE_NO, CHILD_NATIONAL_ID, GUARDIAN_NATIONAL_ID)


def child_payload(w: World) -> dict[str, Any]:
    patient = {
        "full_name": "Bé Na",
        "date_of_birth": child_birthdate(30),
        "gender": "female",
        "national_id": CHILD_NATIONAL_ID,
        "weight_kg": 13.5,
        "guardian": {
            "full_name": "Nguyễn Thị Mẹ",
            "national_id": GUARDIAN_NATIONAL_ID,
            "phone": "0912345678",
        },
    }
    return payload_for(w, patient=patient)


async def every_stored_text(harness: Harness) -> list[str]:
    """Every value of every table, as the database holds it."""
    found: list[str] = []
    async with harness.runtime.database.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        for table in tables:
            rows = (await connection.execute(text(f'SELECT * FROM "{table}"'))).all()  # noqa: S608 - names from the schema itself
            found += [str(value) for row in rows for value in row if value is not None]
    return found


async def stored_identity(harness: Harness) -> list[tuple[Any, ...]]:
    async with harness.runtime.database.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT patient_national_id, patient_insurance_no, jws FROM prescription ORDER BY id")
        )
        return [tuple(row) for row in result]


async def found_through(harness: Harness, w: World, code: str) -> bool:
    """The console of `harness` finds this prescription by citizen ID and by insurance number."""
    browser = Browser(harness.app)
    try:
        await browser.as_prescriber(w)
        return await found_by_numbers(browser, code)
    finally:
        await browser.close()


async def found_by_numbers(browser: Browser, code: str) -> bool:
    by_id = await browser.post_form(PATIENTS, {"by": "national_id", "national_id": NATIONAL_ID})
    by_card = await browser.post_form(PATIENTS, {"by": "insurance_no", "insurance_no": INSURANCE_NO.lower()})
    return f'data-code="{code}"' in by_id.text and f'data-code="{code}"' in by_card.text


async def read_numbers(harness: Harness, w: World, code: str) -> tuple[str, str]:
    r = await harness.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
    assert r.status_code == 200, r.text
    patient = r.json()["patient"]
    return patient["national_id"], patient["insurance_no"]


class TestNothingInClear:
    async def test_the_database_holds_no_identity_number_nor_the_signed_payload(
        self, harness: Harness, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        adult = await api.prescribe(w)
        child_jws = w.prescriber.sign(child_payload(w))
        child = await api.submit(w.facility, child_jws)
        assert child.status_code == 201, child.text
        browser = browsers()
        await browser.as_prescriber(w)
        assert await found_by_numbers(browser, adult["code"])
        stored = await every_stored_text(harness)
        leaks = [value for value in stored if any(number in value for number in IN_CLEAR)]
        assert leaks == []
        assert not any(child_jws in value or child_jws.split(".")[1] in value for value in stored)
        # What the facility reads is in clear, the guardian's number included.
        assert await read_numbers(harness, w, adult["code"]) == (NATIONAL_ID, INSURANCE_NO)
        read = await harness.client.get(
            f"/api/v1/prescriptions/{child.json()['code']}", headers=w.facility.headers
        )
        assert read.json()["patient"]["guardian"]["national_id"] == GUARDIAN_NATIONAL_ID
        assert read.json()["jws"] == child_jws

    async def test_the_lookup_finds_by_number_and_only_that_number(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        other = payload_for(w)
        other["patient"] |= {"national_id": "001180099999", "insurance_no": "DN4010199999999"}
        assert (await api.submit(w.facility, w.prescriber.sign(other))).status_code == 201
        browser = browsers()
        await browser.as_prescriber(w)
        found = await browser.post_form(PATIENTS, {"by": "national_id", "national_id": NATIONAL_ID})
        assert found.text.count("data-code=") == 1 and f'data-code="{code}"' in found.text


class TestRotation:
    async def test_rotation_moves_every_value_under_the_new_key(
        self, harness: Harness, api: Api, make_harness: HarnessFactory
    ) -> None:
        w = await api.world()
        codes = [(await api.prescribe(w, notes=f"rx {n}"))["code"] for n in range(3)]
        old = PiiKeys.from_json(harness.settings.identity_key.get_secret_value())  # type: ignore[union-attr]
        new = old.with_new_key()
        both = Harness(harness.settings.model_copy(update={"identity_key": _secret(new.to_json())}))
        try:
            scanned, rewritten = await reencrypt_all(both.runtime, batch_size=2, show_progress=False)
            assert (scanned, rewritten) == (3, 3)
            again = await reencrypt_all(both.runtime, batch_size=2, show_progress=False)
            assert again == (3, 0)
        finally:
            await both.close()
        for national_id, insurance_no, jws in await stored_identity(harness):
            assert all(value.startswith(f"{new.active}:") for value in (national_id, insurance_no, jws))
        # The old key can go now: with the new one alone, reads and lookups work.
        only_new = PiiKeys({new.active: new.keys[new.active]}, new.active, new.index_key)
        after = Harness(harness.settings.model_copy(update={"identity_key": _secret(only_new.to_json())}))
        try:
            assert await read_numbers(after, w, codes[0]) == (NATIONAL_ID, INSURANCE_NO)
            assert await found_through(after, w, codes[2])
        finally:
            await after.close()

    async def test_the_command_adds_a_key_and_re_encrypts_with_its_report(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = await make_harness("sqlite", identity_key=None)
        w = await harness.api.world()
        code = (await harness.api.prescribe(w))["code"]
        before = PiiKeys.load(harness.settings)
        done = await erx(harness, "pii", "rotate")
        assert done.returncode == 0, done.stderr
        after = PiiKeys.load(harness.settings)
        assert after.active != before.active and before.active in after.keys
        assert "1 prescriptions looked at, 1 re-encrypted" in done.stdout
        assert all(v.startswith(f"{after.active}:") for v in (await stored_identity(harness))[0])
        fresh = Harness(harness.settings)
        try:
            assert await read_numbers(fresh, w, code) == (NATIONAL_ID, INSURANCE_NO)
        finally:
            await fresh.close()

    async def test_the_command_will_not_add_a_key_to_keys_from_settings(self, harness: Harness) -> None:
        refused = await erx(harness, "pii", "rotate")
        assert refused.returncode == 1 and "ERX_IDENTITY_KEY" in refused.stdout
        allowed = await erx(harness, "pii", "rotate", "--reencrypt-only")
        assert allowed.returncode == 0 and "0 prescriptions looked at" in allowed.stdout


class TestMigration:
    async def test_rows_written_in_clear_are_encrypted_by_the_migration(
        self, harness: Harness, api: Api
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        await harness.runtime.database.dispose()
        config = alembic_config(harness.settings)
        await asyncio.to_thread(command.downgrade, config, "20261203_patient_search")
        national_id, insurance_no, jws = (await stored_identity(harness))[0]
        assert (national_id, insurance_no) == (NATIONAL_ID, INSURANCE_NO) and jws.startswith("eyJ")
        await harness.runtime.database.dispose()
        await upgrade_async(harness.settings)
        assert not any(number in value for value in await every_stored_text(harness) for number in IN_CLEAR)
        assert await read_numbers(harness, w, code) == (NATIONAL_ID, INSURANCE_NO)
        assert await found_through(harness, w, code)


def _secret(value: str) -> SecretStr:
    return SecretStr(value)
