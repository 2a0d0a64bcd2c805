"""PostgreSQL only: many pharmacies at once against a real server never over-dispense."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from pharmacy_gateway.dispensing.models import Dispense, DispenseLine
from tests.conftest import Harness
from tests.factories import Pharmacy, dispense_body, facility_view, line, prescribe

pytestmark = pytest.mark.postgres_only


async def recorded(harness: Harness, code: str) -> tuple[int, int]:
    """How many dispenses, and how many units in their lines, the database holds for `code`."""
    async with harness.runtime.database.sessionmaker() as session:
        count = (
            await session.execute(
                select(func.count()).select_from(Dispense).where(Dispense.prescription_code == code)  # type: ignore[arg-type]
            )
        ).scalar_one()
        units = (
            await session.execute(
                select(func.coalesce(func.sum(DispenseLine.quantity), 0))
                .join(Dispense, Dispense.id == DispenseLine.dispense_id)  # type: ignore[arg-type]
                .where(Dispense.prescription_code == code, Dispense.voided_at.is_(None))  # type: ignore[arg-type, union-attr]
            )
        ).scalar_one()
    return int(count), int(units)


def post_dispense(
    client: httpx.AsyncClient, pharmacy: Pharmacy, code: str, body: dict[str, Any], key: str
) -> Any:
    return client.post(
        f"/gateway/v1/prescriptions/{code}/dispenses",
        json=body,
        headers={**pharmacy.headers, "Idempotency-Key": key},
    )


class TestConcurrentDispensing:
    async def test_fifty_single_units_against_ten_accept_exactly_ten(
        self, pg_harness: Harness, live: str
    ) -> None:
        api = pg_harness.api
        w = await api.world()
        product = w.products["normal"]
        code = await prescribe(api, w, items=[product.line(quantity=10)])
        pharmacies = [await api.pharmacy() for _ in range(5)]
        clients = [httpx.AsyncClient(base_url=live, timeout=60) for _ in pharmacies]
        body = dispense_body(line(1, product.registration_no, 1))
        try:
            answers = await asyncio.gather(
                *(
                    post_dispense(clients[i % 5], pharmacies[i % 5], code, body, secrets.token_hex(8))
                    for i in range(50)
                )
            )
        finally:
            for client in clients:
                await client.aclose()
        statuses = Counter(r.status_code for r in answers)
        assert statuses == {201: 10, 409: 40}, [r.text for r in answers if r.status_code not in (201, 409)]
        accepted = [r.json() for r in answers if r.status_code == 201]
        assert len({a["dispense_id"] for a in accepted}) == 10
        # Each accepted answer saw a distinct step of the counter: 1..10 dispensed.
        assert sorted(a["items"][0]["dispensed"] for a in accepted) == list(range(1, 11))
        assert [a["prescription_status"] for a in accepted].count("dispensed") == 1
        view = await facility_view(api, w, code)
        assert view["status"] == "dispensed"
        assert (view["items"][0]["dispensed"], view["items"][0]["remaining"]) == (10, 0)
        assert await recorded(pg_harness, code) == (10, 10)

    async def test_raced_retries_with_one_key_make_one_dispense(self, pg_harness: Harness, live: str) -> None:
        api = pg_harness.api
        w = await api.world()
        product = w.products["normal"]
        code = await prescribe(api, w)
        pharmacy = await api.pharmacy()
        key = secrets.token_hex(8)
        body = dispense_body(line(1, product.registration_no, 3, unit_price=1000))
        async with httpx.AsyncClient(base_url=live, timeout=60) as client:
            answers = await asyncio.gather(
                *(post_dispense(client, pharmacy, code, body, key) for _ in range(12))
            )
        assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
        assert len({r.json()["dispense_id"] for r in answers}) == 1
        view = await facility_view(api, w, code)
        assert view["items"][0]["dispensed"] == 3
        assert await recorded(pg_harness, code) == (1, 3)

    async def test_cancel_racing_dispenses_lets_only_one_side_win(
        self, pg_harness: Harness, live: str
    ) -> None:
        api = pg_harness.api
        w = await api.world()
        product = w.products["normal"]
        code = await prescribe(api, w)
        pharmacy = await api.pharmacy()
        body = dispense_body(line(1, product.registration_no, 2))
        async with httpx.AsyncClient(base_url=live, timeout=60) as client:
            cancel = client.post(
                f"/api/v1/prescriptions/{code}/cancel", json={"reason": "Kê nhầm"}, headers=w.facility.headers
            )
            answers = await asyncio.gather(
                cancel, *(post_dispense(client, pharmacy, code, body, secrets.token_hex(8)) for _ in range(4))
            )
        cancelled = answers[0].status_code == 200
        dispensed = [r for r in answers[1:] if r.status_code == 201]
        view = await facility_view(api, w, code)
        if cancelled:
            assert dispensed == [] and view["status"] == "cancelled"
            assert view["items"][0]["dispensed"] == 0
        else:
            assert answers[0].status_code == 409
            assert len(dispensed) == 4 and view["items"][0]["dispensed"] == 8
        assert await recorded(pg_harness, code) == (len(dispensed), 2 * len(dispensed))

    async def test_raced_voids_return_the_quantity_once(self, pg_harness: Harness, live: str) -> None:
        api = pg_harness.api
        w = await api.world()
        product = w.products["normal"]
        code = await prescribe(api, w)
        pharmacy = await api.pharmacy()
        async with httpx.AsyncClient(base_url=live, timeout=60) as client:
            first = await post_dispense(
                client,
                pharmacy,
                code,
                dispense_body(line(1, product.registration_no, 4)),
                secrets.token_hex(8),
            )
            second = await post_dispense(
                client,
                pharmacy,
                code,
                dispense_body(line(1, product.registration_no, 5)),
                secrets.token_hex(8),
            )
            assert first.status_code == second.status_code == 201
            dispense_id = first.json()["dispense_id"]
            voids = await asyncio.gather(
                *(
                    client.post(
                        f"/gateway/v1/dispenses/{dispense_id}/void",
                        json={"reason": "Trùng"},
                        headers=pharmacy.headers,
                    )
                    for _ in range(6)
                )
            )
        assert sorted(r.status_code for r in voids) == [200] + [409] * 5
        view = await facility_view(api, w, code)
        assert (view["status"], view["items"][0]["dispensed"], view["items"][0]["remaining"]) == (
            "partially_dispensed",
            5,
            5,
        )
        assert await recorded(pg_harness, code) == (2, 5)
