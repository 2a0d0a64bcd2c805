"""Corrections (voids within the window) and each pharmacy's own dispense history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.clients import Gateway, gateway_for
from tests.conftest import Harness
from tests.factories import Api, World, facility_view, line, prescribe


async def dispensed(gw: Gateway, code: str, registration_no: str, quantity: int) -> str:
    r = await gw.dispense(code, line(1, registration_no, quantity))
    assert r.status_code == 201, r.text
    dispense_id: str = r.json()["dispense_id"]
    return dispense_id


async def log_actions(api: Api, w: World, code: str) -> list[str]:
    r = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=w.facility.headers)
    return [e["action"] for e in r.json() if e["actor_kind"] == "pharmacy"]


class TestVoid:
    async def test_void_returns_the_quantities_and_keeps_both_events(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        product = world.products["normal"].registration_no
        code = await prescribe(api, world)
        dispense_id = await dispensed(gw, code, product, 10)
        assert (await facility_view(api, world, code))["status"] == "dispensed"
        r = await gw.void(dispense_id, "Bán nhầm lô")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["dispense_id"] == dispense_id and body["voided_at"].endswith("+07:00")
        assert body["prescription_status"] == "active"
        assert body["items"] == [{"line_no": 1, "dispensed": 0, "remaining": 10}]
        view = await facility_view(api, world, code)
        assert view["status"] == "active" and view["items"][0]["remaining"] == 10
        assert await log_actions(api, world, code) == ["dispense", "dispense_void"]
        history = (await gw.history()).json()["items"]
        assert [(h["dispense_id"], h["voided"], h["void_reason"]) for h in history] == [
            (dispense_id, True, "Bán nhầm lô")
        ]
        assert history[0]["items"][0]["quantity"] == 10

    async def test_void_of_one_of_two_dispenses_leaves_partial(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        product = world.products["normal"].registration_no
        code = await prescribe(api, world)
        await dispensed(gw, code, product, 4)
        second = await dispensed(gw, code, product, 6)
        r = await gw.void(second)
        assert r.json()["prescription_status"] == "partially_dispensed"
        assert r.json()["items"] == [{"line_no": 1, "dispensed": 4, "remaining": 6}]
        # What came back can be dispensed again.
        assert (await gw.dispense(code, line(1, product, 6))).status_code == 201

    async def test_voiding_twice_is_409(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        dispense_id = await dispensed(gw, code, world.products["normal"].registration_no, 3)
        assert (await gw.void(dispense_id)).status_code == 200
        r = await gw.void(dispense_id)
        assert r.status_code == 409
        assert (await facility_view(api, world, code))["items"][0]["remaining"] == 10

    async def test_another_pharmacy_cannot_void_it(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        dispense_id = await dispensed(gw, code, world.products["normal"].registration_no, 3)
        intruder = await gateway_for(harness)
        r = await intruder.void(dispense_id)
        assert r.status_code == 404
        assert (await facility_view(api, world, code))["items"][0]["dispensed"] == 3
        assert (await gw.history()).json()["items"][0]["voided"] is False

    async def test_unknown_dispense_is_404(self, gw: Gateway) -> None:
        assert (await gw.void("0" * 32)).status_code == 404

    async def test_a_reason_is_required(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        dispense_id = await dispensed(gw, code, world.products["normal"].registration_no, 3)
        for body in ({}, {"reason": ""}, {"reason": "   "}):
            r = await gw.client.post(
                f"/gateway/v1/dispenses/{dispense_id}/void", json=body, headers=gw.headers
            )
            assert r.status_code == 422, body
            assert r.json()["errors"][0]["loc"] == ["body", "reason"]

    async def test_past_the_void_window_is_409(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w)
        gw = await gateway_for(tuned)
        dispense_id = await dispensed(gw, code, w.products["normal"].registration_no, 3)
        r = await gw.void(dispense_id)
        assert r.status_code == 409 and "no longer" in r.json()["detail"]
        assert (await facility_view(tuned.api, w, code))["items"][0]["dispensed"] == 3


class TestHistory:
    async def _three(self, api: Api, w: World, gw: Gateway) -> list[str]:
        product = w.products["normal"].registration_no
        ids = []
        for quantity in (1, 2, 3):
            code = await prescribe(api, w)
            ids.append(await dispensed(gw, code, product, quantity))
        return ids

    async def test_own_dispenses_newest_first_with_lines(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        ids = await self._three(api, world, gw)
        other = await gateway_for(harness)
        await self._three(api, world, other)
        r = await gw.history()
        assert r.status_code == 200
        body = r.json()
        assert body["total"] == 3
        assert [d["dispense_id"] for d in body["items"]] == ids[::-1]
        assert [d["items"][0]["quantity"] for d in body["items"]] == [3, 2, 1]
        assert all(d["voided"] is False and d["created_at"].endswith("+07:00") for d in body["items"])

    async def test_pagination(self, api: Api, world: World, gw: Gateway) -> None:
        ids = await self._three(api, world, gw)
        pages: list[Any] = []
        for offset in (0, 2, 4):
            r = await gw.history(limit=2, offset=offset)
            assert r.json()["total"] == 3
            pages += [d["dispense_id"] for d in r.json()["items"]]
        assert pages == ids[::-1]
        assert (await gw.history(limit=0)).status_code == 422
        assert (await gw.history(limit=201)).status_code == 422

    async def test_filter_by_date_and_instant(self, api: Api, world: World, gw: Gateway) -> None:
        await self._three(api, world, gw)
        # Dates are Vietnam calendar days (UTC+7).
        today = (datetime.now(UTC) + timedelta(hours=7)).date()
        assert (await gw.history(**{"from": today.isoformat()})).json()["total"] == 3
        assert (await gw.history(to=today.isoformat())).json()["total"] == 3
        tomorrow = today + timedelta(days=1)
        assert (await gw.history(**{"from": tomorrow.isoformat()})).json()["total"] == 0
        yesterday = today - timedelta(days=1)
        assert (await gw.history(to=yesterday.isoformat())).json()["total"] == 0
        soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert (await gw.history(**{"from": soon})).json()["total"] == 0
        assert (await gw.history(to=soon)).json()["total"] == 3
        assert (await gw.history(**{"from": "yesterday"})).status_code == 422
