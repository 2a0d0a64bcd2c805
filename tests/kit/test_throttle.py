"""Throttling of guesses (unknown codes, wrong secrets) per connection code and per address.

The `tuned` harness allows 2 free failures and blocks at 4 per code (8 per address) for a
3-second window, so engaging and releasing both happen within a test.
"""

from __future__ import annotations

import asyncio

import httpx

from kit import throttle
from tests.clients import Gateway, client_from, gateway_for, new_address
from tests.conftest import Harness
from tests.factories import access_entries, prescribe


def unknown_code(n: int) -> str:
    return f"01001GUESS{n:02d}-c"


async def guess(gw: Gateway, times: int, start: int = 0) -> list[int]:
    return [(await gw.lookup(unknown_code(start + n))).status_code for n in range(times)]


async def wait_out(retry_after: str) -> None:
    # Waiting for the window to pass is the behaviour under test, not a timing assertion.
    await asyncio.sleep(int(retry_after) + 0.2)


class TestUnknownCodes:
    async def test_engages_per_code_and_releases_after_retry_after(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w)
        address = new_address()
        guesser = await gateway_for(tuned, address=address)
        neighbour = await gateway_for(tuned, address=address)

        assert await guess(guesser, 4) == [404, 404, 404, 404]
        r = await guesser.lookup(code)
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert 1 <= int(r.headers["retry-after"]) <= tuned.settings.throttle_window_seconds
        # The honest pharmacy behind the same address keeps working.
        assert (await neighbour.lookup(code)).status_code == 200

        log = await tuned.api.client.get(
            f"/api/v1/prescriptions/{code}/access-log", headers=w.facility.headers
        )
        actions = [(e["actor_code"], e["action"]) for e in log.json() if e["actor_kind"] == "pharmacy"]
        assert actions == [
            (guesser.pharmacy.connection_code, "lookup_throttled"),
            (neighbour.pharmacy.connection_code, "lookup"),
        ]

        await wait_out(r.headers["retry-after"])
        assert (await guesser.lookup(code)).status_code == 200
        # A fresh window: the next miss is an ordinary 404 again.
        assert await guess(guesser, 1, start=50) == [404]

    async def test_successful_lookups_do_not_count(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w)
        gw = await gateway_for(tuned)
        for _ in range(10):
            assert (await gw.lookup(code)).status_code == 200
        assert await guess(gw, 4) == [404, 404, 404, 404]
        assert (await gw.lookup(code)).status_code == 429

    async def test_engages_per_address_for_many_codes(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w)
        crowded = new_address()
        outlets = [await gateway_for(tuned, address=crowded) for _ in range(4)]
        elsewhere = await gateway_for(tuned)
        # 3 + 3 + 2 misses: no code reaches its limit of 4, the address reaches its limit of 8.
        assert await guess(outlets[0], 3) == [404] * 3
        assert await guess(outlets[1], 3, start=10) == [404] * 3
        assert await guess(outlets[2], 2, start=20) == [404] * 2
        r = await outlets[3].lookup(code)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert (await elsewhere.lookup(code)).status_code == 200

    async def test_refusals_reach_the_log_with_a_marker(self, tuned: Harness) -> None:
        gw = await gateway_for(tuned)
        await guess(gw, 4, start=70)
        assert (await gw.lookup("not a code at all")).status_code == 429
        entries = await access_entries(tuned, "?not a code a")
        assert [(e.actor_code, e.action) for e in entries if e.actor_code == gw.pharmacy.connection_code] == [
            (gw.pharmacy.connection_code, "lookup_throttled")
        ]

    async def test_dispensing_unknown_codes_counts_too(self, tuned: Harness) -> None:
        gw = await gateway_for(tuned)
        for n in range(4):
            r = await gw.dispense(
                unknown_code(80 + n), {"line_no": 1, "registration_no": "VD-1-1", "quantity": 1}
            )
            assert r.status_code == 404
        r = await gw.dispense(unknown_code(90), {"line_no": 1, "registration_no": "VD-1-1", "quantity": 1})
        assert r.status_code == 429


class TestWrongSecrets:
    async def test_engages_per_connection_code_and_releases(self, tuned: Harness) -> None:
        address = new_address()
        target = await gateway_for(tuned, address=address)
        neighbour = await gateway_for(tuned, address=address)
        assert [(await target.token("guess")).status_code for _ in range(4)] == [401] * 4
        r = await target.token()
        assert r.status_code == 429 and "retry-after" in r.headers
        assert (await neighbour.token()).status_code == 200
        await wait_out(r.headers["retry-after"])
        assert (await target.token()).status_code == 200

    async def test_engages_per_address_across_codes(self, tuned: Harness) -> None:
        address = new_address()
        outlets = [await gateway_for(tuned, address=address) for _ in range(3)]
        assert [(await outlets[0].token("x")).status_code for _ in range(3)] == [401] * 3
        assert [(await outlets[1].token("x")).status_code for _ in range(3)] == [401] * 3
        assert [(await outlets[2].token("x")).status_code for _ in range(2)] == [401] * 2
        assert (await outlets[2].token()).status_code == 429
        elsewhere = await gateway_for(tuned)
        assert (await elsewhere.token()).status_code == 200

    async def test_unknown_connection_codes_count_per_address(self, tuned: Harness) -> None:
        gw = await gateway_for(tuned)
        for n in range(8):
            r = await gw.client.post(
                "/gateway/v1/auth/token",
                data={"grant_type": "client_credentials", "client_id": f"01NT{n:06d}", "client_secret": "x"},
            )
            assert r.status_code == 401
        assert (await gw.token()).status_code == 429


class TestCounters:
    async def test_free_then_slowed_then_blocked(self, tuned: Harness) -> None:
        settings = tuned.settings
        keys = throttle.subjects(settings, connection_code="01NTCOUNT1", address=new_address())
        seen = []
        for _ in range(5):
            async with tuned.runtime.database.sessionmaker() as session, session.begin():
                found = await throttle.verdict(session, settings, keys)
                seen.append("blocked" if found.blocked else "slowed" if found.slowed else "free")
                await throttle.count_failure(session, settings, keys)
        assert seen == ["free", "free", "slowed", "slowed", "blocked"]

    async def test_concurrent_failures_are_all_counted(self, tuned: Harness) -> None:
        settings = tuned.settings
        keys = throttle.subjects(settings, connection_code="01NTCOUNT2", address=new_address())

        async def fail() -> int:
            async with tuned.runtime.database.sessionmaker() as session, session.begin():
                return await throttle.count_failure(session, settings, keys)

        counts = await asyncio.gather(*(fail() for _ in range(12)))
        assert sorted(counts) == list(range(1, 13))


class TestCoreTokenEndpoint:
    """Facilities and the health department guess secrets at /api/v1/auth/token: same limits."""

    async def test_wrong_facility_secrets_engage_and_release(self, tuned: Harness) -> None:
        facility = await tuned.api.facility()
        async with client_from(tuned.app, new_address()) as client:

            async def token(secret: str) -> httpx.Response:
                return await client.post(
                    "/api/v1/auth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": facility.facility_code,
                        "client_secret": secret,
                    },
                )

            assert [(await token("wrong")).status_code for _ in range(4)] == [401] * 4
            blocked = await token(facility.client_secret)
            assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
            assert blocked.headers["content-type"] == "application/problem+json"
            await wait_out(blocked.headers["retry-after"])
            assert (await token(facility.client_secret)).status_code == 200
