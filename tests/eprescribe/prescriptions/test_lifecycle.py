"""A stored prescription: replaced, cancelled, seen only by its facility, logged, expired."""

from __future__ import annotations

from datetime import timedelta

from eprescribe.prescriptions import service as prescriptions
from tests.conftest import Harness
from tests.factories import Api, World, payload_for, rejected_at


class TestReplaceAndCancel:
    async def test_replacement_retires_the_original(self, api: Api, world: World) -> None:
        original = await api.prescribe(world)
        fixed = await api.prescribe(world, replaces=original["code"].lower())
        old = (
            await api.client.get(f"/api/v1/prescriptions/{original['code']}", headers=world.facility.headers)
        ).json()
        new = (
            await api.client.get(f"/api/v1/prescriptions/{fixed['code']}", headers=world.facility.headers)
        ).json()
        assert old["status"] == "replaced" and old["replaced_by"] == fixed["code"]
        assert new["replaces"] == original["code"]
        again = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, replaces=original["code"]))
        )
        assert again.status_code == 409

    async def test_cannot_replace_another_facilitys_prescription(self, api: Api, world: World) -> None:
        other_world = await api.world()
        theirs = await api.prescribe(other_world)
        r = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, replaces=theirs["code"]))
        )
        assert rejected_at(r, "replaces")

    async def test_cancel_once_while_nothing_dispensed(self, api: Api, world: World) -> None:
        created = await api.prescribe(world)
        r = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel",
            json={"reason": "Kê nhầm thuốc"},
            headers=world.facility.headers,
        )
        assert (
            r.status_code == 200
            and r.json()["status"] == "cancelled"
            and r.json()["cancel_reason"] == "Kê nhầm thuốc"
        )
        again = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel",
            json={"reason": "x"},
            headers=world.facility.headers,
        )
        assert again.status_code == 409
        missing = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel", json={}, headers=world.facility.headers
        )
        assert rejected_at(missing, "reason")

    async def test_cannot_cancel_or_replace_after_a_dispense(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        created = await api.prescribe(world)
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            found = await prescriptions.find(session, created["code"])
            assert found is not None
            locked = await prescriptions.lock(session, found.code)
            assert locked is not None and prescriptions.dispensable(locked, found.issued_at)
            moved = await prescriptions.move_quantities(session, locked, {1: 4})
            assert moved is not None and moved.balances == {1: (4, 6)}
            assert moved.status == "partially_dispensed"
            # The conditional UPDATE refuses what does not remain; the ledger is unchanged.
            assert await prescriptions.move_quantities(session, locked, {1: 7}) is None
        r = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel",
            json={"reason": "x"},
            headers=world.facility.headers,
        )
        assert r.status_code == 409
        replacement = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, replaces=created["code"]))
        )
        assert replacement.status_code == 409
        record = (
            await api.client.get(f"/api/v1/prescriptions/{created['code']}", headers=world.facility.headers)
        ).json()
        assert record["status"] == "partially_dispensed"
        assert (record["items"][0]["dispensed"], record["items"][0]["remaining"]) == (4, 6)


class TestIsolationBetweenFacilities:
    async def test_another_facility_sees_nothing(self, api: Api, world: World) -> None:
        created = await api.prescribe(world)
        intruder = await api.facility()
        code = created["code"]
        for method, path, body in [
            ("GET", f"/api/v1/prescriptions/{code}", None),
            ("GET", f"/api/v1/prescriptions/{code}/qr.png", None),
            ("GET", f"/api/v1/prescriptions/{code}/access-log", None),
            ("POST", f"/api/v1/prescriptions/{code}/cancel", {"reason": "x"}),
        ]:
            r = await api.client.request(method, path, json=body, headers=intruder.headers)
            assert r.status_code == 404, path
            assert "Trần" not in r.text and "001180012345" not in r.text
        record = (
            await api.client.get(f"/api/v1/prescriptions/{code}", headers=world.facility.headers)
        ).json()
        assert record["status"] == "active"
        log = (
            await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers)
        ).json()
        assert {"actor_kind": "facility", "actor_code": intruder.facility_code, "action": "read_denied"} in [
            {k: e[k] for k in ("actor_kind", "actor_code", "action")} for e in log
        ]


class TestAccessLog:
    async def test_every_access_is_recorded(self, api: Api, world: World) -> None:
        created = await api.prescribe(world)
        code = created["code"]
        await api.client.get(f"/api/v1/prescriptions/{code}", headers=world.facility.headers)
        await api.client.get(f"/api/v1/prescriptions/{code}/qr.svg", headers=world.facility.headers)
        log = (
            await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers)
        ).json()
        assert [e["action"] for e in log] == ["create", "read", "qr_svg", "read_access_log"]
        assert all(
            e["actor_code"] == world.facility.facility_code and e["at"].endswith("+07:00") for e in log
        )


class TestStatus:
    async def test_expired_is_derived_from_valid_until(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        created = await api.prescribe(world)
        async with harness.runtime.database.sessionmaker() as session:
            found = await prescriptions.find(session, created["code"])
            assert found is not None
            assert found.status_at(found.valid_until) == "active"
            later = found.valid_until + timedelta(seconds=1)
            assert found.status_at(later) == "expired"
            assert not prescriptions.dispensable(found, later)
