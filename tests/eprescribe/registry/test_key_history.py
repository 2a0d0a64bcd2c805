"""A prescriber's keys are kept: a key change neither orphans old signatures nor revives the old key (issue 11)."""

from __future__ import annotations

import asyncio
import itertools
from base64 import urlsafe_b64decode
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from joserfc.jwk import ECKey
from sqlalchemy import select, update
from sqlmodel import col

from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.models import Prescription
from eprescribe.registry.models import Prescriber, RegisteredKey
from erx.integrity import SIGNED_FORMS
from erx.migrate import alembic_config, upgrade_async
from tests.clients import erx
from tests.conftest import Harness
from tests.eprescribe.national.http import clinic, doctor_token, his_body, send, signed
from tests.factories import Api, World, payload_for, prescribe, sign

PREVIOUS_HEAD = "20261204_audit_chain"


async def replace_key(api: Api, prescriber_id: str, key: ECKey) -> None:
    r = await api.client.put(
        f"/api/v1/prescribers/{prescriber_id}/key",
        json={"public_jwk": key.as_dict(private=False)},
        headers=await api.admin_headers(),
    )
    assert r.status_code == 200, r.text


async def history(harness: Harness, prescriber_id: str) -> list[RegisteredKey]:
    async with harness.runtime.database.sessionmaker() as session:
        found = await session.execute(
            select(RegisteredKey)
            .where(col(RegisteredKey.prescriber_id) == prescriber_id)
            .order_by(col(RegisteredKey.registered_at))
        )
        return list(found.scalars())


async def check_stored(harness: Harness) -> tuple[int, dict[str, str]]:
    async with harness.runtime.database.sessionmaker() as session, session.begin():
        found = await prescriptions.check_stored_signatures(session, batch=2, forms=SIGNED_FORMS)
    return found.checked, {b.code: b.reason for b in found.bad}


async def set_jws(harness: Harness, code: str, compact: str) -> None:
    """Rewrite a stored JWS behind the app's back (encrypted as the column stores it)."""
    async with harness.runtime.database.sessionmaker() as session, session.begin():
        await session.execute(update(Prescription).where(col(Prescription.code) == code).values(jws=compact))


async def before_and_after(harness: Harness) -> tuple[World, ECKey, list[str], list[str]]:
    """Two prescriptions under the first key, a key change, two under the new one."""
    w = await harness.api.world()
    old = w.prescriber.key
    earlier = [await prescribe(harness.api, w) for _ in range(2)]
    new = ECKey.generate_key("P-256", private=True)
    await replace_key(harness.api, w.prescriber.prescriber_id, new)
    w.prescriber.key = new
    later = [await prescribe(harness.api, w) for _ in range(2)]
    return w, old, earlier, later


class TestTheHistory:
    async def test_registration_keeps_the_key_and_a_change_retires_it(self, harness: Harness) -> None:
        w = await harness.api.world()
        pid = w.prescriber.prescriber_id
        [first] = await history(harness, pid)
        assert first.thumbprint == w.prescriber.key.thumbprint() and first.retired_at is None
        new = ECKey.generate_key("P-256", private=True)
        await replace_key(harness.api, pid, new)
        old, current = await history(harness, pid)
        assert old.thumbprint == w.prescriber.key.thumbprint()
        assert old.retired_at == current.registered_at
        assert current.thumbprint == new.thumbprint() and current.retired_at is None
        async with harness.runtime.database.sessionmaker() as session:
            prescriber = await session.get(Prescriber, pid)
        assert prescriber is not None and prescriber.key_thumbprint == new.thumbprint()
        # The same key again is no change at all.
        await replace_key(harness.api, pid, new)
        assert len(await history(harness, pid)) == 2

    @pytest.mark.postgres_only
    async def test_concurrent_replacements_leave_exactly_one_current_key(self, pg_harness: Harness) -> None:
        w = await pg_harness.api.world()
        pid = w.prescriber.prescriber_id
        keys = [ECKey.generate_key("P-256", private=True) for _ in range(6)]
        await asyncio.gather(*(replace_key(pg_harness.api, pid, k) for k in keys))
        found = await history(pg_harness, pid)
        assert len(found) == 7
        current = [k for k in found if k.retired_at is None]
        assert len(current) == 1
        async with pg_harness.runtime.database.sessionmaker() as session:
            prescriber = await session.get(Prescriber, pid)
        assert prescriber is not None and prescriber.key_thumbprint == current[0].thumbprint
        # The periods follow each other without a gap or an overlap.
        for before, after in itertools.pairwise(found):
            assert before.retired_at == after.registered_at


class TestStoredSignatures:
    async def test_prescriptions_before_and_after_a_key_change_all_verify(self, harness: Harness) -> None:
        await before_and_after(harness)
        assert await check_stored(harness) == (4, {})
        done = await erx(harness, "audit", "verify", "--signatures", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "4 prescriptions verify with their prescribers' keys" in done.stdout

    async def test_an_old_prescription_re_signed_with_the_new_key_is_caught(self, harness: Harness) -> None:
        w, _, earlier, _ = await before_and_after(harness)
        async with harness.runtime.database.sessionmaker() as session:
            stored = (
                await session.execute(select(Prescription.jws).where(col(Prescription.code) == earlier[0]))  # type: ignore[call-overload]
            ).scalar_one()
        # The same payload (so the same digest), signed with a key that was not current then.
        _, payload, _ = stored.split(".")
        raw = urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        await set_jws(harness, earlier[0], sign(raw, w.prescriber.key, w.prescriber.prescriber_id))
        checked, bad = await check_stored(harness)
        assert checked == 4
        assert bad == {
            earlier[0]: "the signature does not verify with the prescriber's key of the time it was received"
        }

    async def test_a_broken_signature_is_caught_and_named(self, harness: Harness) -> None:
        _, _, earlier, later = await before_and_after(harness)
        async with harness.runtime.database.sessionmaker() as session:
            stored = (
                await session.execute(select(Prescription.jws).where(col(Prescription.code) == later[1]))  # type: ignore[call-overload]
            ).scalar_one()
        head, payload, signature = stored.split(".")
        flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
        await set_jws(harness, later[1], f"{head}.{payload}.{flipped}")
        done = await erx(harness, "audit", "verify", "--signatures", "--no-progress")
        assert done.returncode == 1
        assert f"bad signature {later[1]}" in done.stdout
        assert not any(f"bad signature {code}" in done.stdout for code in [*earlier, later[0]])

    async def test_a_prescription_received_before_any_key_of_its_prescriber_is_caught(
        self, harness: Harness
    ) -> None:
        w = await harness.api.world()
        code = await prescribe(harness.api, w)
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            await session.execute(
                update(RegisteredKey)
                .where(col(RegisteredKey.prescriber_id) == w.prescriber.prescriber_id)
                .values(registered_at=datetime(2999, 1, 1, tzinfo=UTC))
            )
        assert await check_stored(harness) == (
            1,
            {code: "none of the prescriber's keys was current when it was received"},
        )


class TestSubmissionUsesOnlyTheCurrentKey:
    async def test_the_old_key_is_refused_after_the_change(self, harness: Harness) -> None:
        w, old, _, _ = await before_and_after(harness)
        r = await harness.api.submit(w.facility, sign(payload_for(w), old, w.prescriber.prescriber_id))
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "jws", "signature"]
        async with harness.runtime.database.sessionmaker() as session:
            count = len((await session.execute(select(Prescription.id))).all())  # type: ignore[call-overload]
        assert count == 4

    async def test_the_national_door_refuses_the_old_key_too(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        old = c.doctor.key
        new = ECKey.generate_key("P-256", private=True)
        await replace_key(harness.api, c.doctor.prescriber_id, new)
        refused = await send(harness.client, token, signed(his_body(c), c.doctor))
        assert refused.status_code == 400, refused.text
        c.doctor.key = new
        accepted = await send(harness.client, token, signed(his_body(c), c.doctor))
        assert accepted.status_code == 200, accepted.text
        assert old.thumbprint() != new.thumbprint()


class TestTheMigration:
    async def test_it_keeps_every_current_key_as_current_since_registration(self, harness: Harness) -> None:
        w = await harness.api.world()
        await prescribe(harness.api, w)
        await harness.runtime.database.dispose()
        config = alembic_config(harness.settings)
        await asyncio.to_thread(command.downgrade, config, PREVIOUS_HEAD)
        await upgrade_async(harness.settings)
        await harness.runtime.database.dispose()
        for prescriber in (w.prescriber, w.controlled_prescriber):
            [kept] = await history(harness, prescriber.prescriber_id)
            async with harness.runtime.database.sessionmaker() as session:
                row = await session.get(Prescriber, prescriber.prescriber_id)
            assert row is not None
            expected: dict[str, Any] = row.public_jwk
            assert (kept.thumbprint, kept.public_jwk) == (prescriber.key.thumbprint(), expected)
            assert kept.registered_at == row.created_at and kept.retired_at is None
        assert await check_stored(harness) == (1, {})
