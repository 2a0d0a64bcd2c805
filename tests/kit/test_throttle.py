"""Throttling that stops guessing without locking anyone out (issue 11, item 1).

The `tuned` harness allows 2 free failures and refuses from the 5th attempt per (client,
address) (4 checked), 8 per address, and 4 unknown prescription codes per pharmacy, for a
3-second window, so engaging and releasing both happen within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import TextClause, text

from kit import throttle
from kit.database import SessionDep
from kit.errors import NotFound
from kit.throttle import PaceDep
from kit.time import utcnow
from tests.clients import Gateway, client_from, gateway_for, new_address
from tests.conftest import Harness, HarnessFactory
from tests.factories import access_entries, prescribe


def unknown_code(n: int) -> str:
    return f"01001GUESS{n:02d}-c"


async def guess(gw: Gateway, times: int, start: int = 0) -> list[int]:
    return [(await gw.lookup(unknown_code(start + n))).status_code for n in range(times)]


async def wait_out(retry_after: str) -> None:
    # Waiting for the window to pass is the behaviour under test, not a timing assertion.
    await asyncio.sleep(int(retry_after) + 0.2)


async def pharmacy_token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post(
        "/gateway/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


def assert_throttled(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 429
    assert int(r.headers["retry-after"]) >= 1


class TestNobodyIsLockedOut:
    async def test_a_strangers_wrong_secrets_never_refuse_the_owner(self, tuned: Harness) -> None:
        target = await gateway_for(tuned)
        async with client_from(tuned.app, new_address()) as stranger:
            codes = [
                (await pharmacy_token(stranger, target.pharmacy.connection_code, "guess")).status_code
                for _ in range(12)
            ]
        # The stranger is slowed, then refused...
        assert codes[:4] == [401] * 4 and set(codes[4:]) == {429}
        # ...and the owner, elsewhere, signs in and keeps using its token.
        assert (await target.token()).status_code == 200
        assert (await target.lookup(unknown_code(1))).status_code == 404

    async def test_a_stranger_behind_the_owners_address_cannot_lock_it_out(self, tuned: Harness) -> None:
        shared = new_address()
        owner = await gateway_for(tuned, address=shared)
        assert (await owner.token()).status_code == 200  # this pair is now known
        async with client_from(tuned.app, shared) as stranger:
            for n in range(10):
                r = await pharmacy_token(stranger, f"01NOBODY{n:02d}", f"guess-{n}")
            # The address is refused for every client id not known there...
            assert_throttled(r)
            assert_throttled(await pharmacy_token(stranger, "01NOBODY99", "guess"))
            # ...while the known pair is still checked (a 256-bit secret needs no lockout).
            r = await pharmacy_token(stranger, owner.pharmacy.connection_code, "guess")
            assert r.status_code == 401
        # The owner that signed in from here before still does.
        assert (await owner.token()).status_code == 200

    async def test_valid_tokens_keep_working_while_the_secret_is_guessed(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w)
        gw = await gateway_for(tuned)
        for _ in range(10):
            await gw.token("guess")
        assert_throttled(await gw.token("guess"))
        assert (await gw.lookup(code)).status_code == 200

    async def test_unknown_codes_lock_nobody_out_of_signing_in(self, tuned: Harness) -> None:
        gw = await gateway_for(tuned)
        assert await guess(gw, 4) == [404] * 4
        assert_throttled(await gw.lookup(unknown_code(9)))
        # The pharmacy's misses spend its lookup quota only: it signs in as before.
        assert (await gw.token()).status_code == 200

    async def test_unknown_client_ids_count_per_address_only(self, tuned: Harness) -> None:
        victim = await gateway_for(tuned)
        address = new_address()
        async with client_from(tuned.app, address) as stranger:
            for n in range(8):
                r = await pharmacy_token(stranger, f"01NT{n:06d}", "x")
                assert r.status_code == 401
            assert_throttled(await pharmacy_token(stranger, victim.pharmacy.connection_code, "x"))
        assert (await victim.token()).status_code == 200


class TestGuessersAreSlowedThenRefused:
    async def test_per_client_and_address_then_released(self, tuned: Harness) -> None:
        address = new_address()
        target = await gateway_for(tuned, address=address)
        neighbour = await gateway_for(tuned, address=address)
        assert [(await target.token("guess")).status_code for _ in range(4)] == [401] * 4
        refused = await target.token()
        assert_throttled(refused)
        assert int(refused.headers["retry-after"]) <= tuned.settings.throttle_window_seconds
        # Another client behind the same address is not this pair.
        assert (await neighbour.token()).status_code == 200
        await wait_out(refused.headers["retry-after"])
        assert (await target.token()).status_code == 200

    async def test_per_address_across_clients(self, tuned: Harness) -> None:
        address = new_address()
        outlets = [await gateway_for(tuned, address=address) for _ in range(3)]
        assert [(await outlets[0].token("x")).status_code for _ in range(3)] == [401] * 3
        assert [(await outlets[1].token("x")).status_code for _ in range(3)] == [401] * 3
        assert [(await outlets[2].token("x")).status_code for _ in range(2)] == [401] * 2
        assert_throttled(await outlets[2].token())
        assert (await (await gateway_for(tuned)).token()).status_code == 200

    async def test_right_secrets_give_their_attempt_back(self, tuned: Harness) -> None:
        gw = await gateway_for(tuned)
        for _ in range(20):
            assert (await gw.token()).status_code == 200

    async def test_the_core_token_endpoint_is_throttled_alike(self, tuned: Harness) -> None:
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
            assert_throttled(blocked)
            await wait_out(blocked.headers["retry-after"])
            assert (await token(facility.client_secret)).status_code == 200
        # The facility, from its own address, was never refused.
        assert (
            await tuned.api.token("/api/v1/auth/token", facility.facility_code, facility.client_secret)
        ).status_code == 200


class TestLookupQuota:
    async def test_per_pharmacy_and_released(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w)
        address = new_address()
        guesser = await gateway_for(tuned, address=address)
        neighbour = await gateway_for(tuned, address=address)
        assert await guess(guesser, 4) == [404] * 4
        refused = await guesser.lookup(code)
        assert_throttled(refused)
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
        await wait_out(refused.headers["retry-after"])
        assert (await guesser.lookup(code)).status_code == 200
        assert await guess(guesser, 1, start=50) == [404]

    async def test_found_codes_do_not_count(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w)
        gw = await gateway_for(tuned)
        for _ in range(10):
            assert (await gw.lookup(code)).status_code == 200
        assert await guess(gw, 4) == [404] * 4
        assert_throttled(await gw.lookup(code))

    async def test_refusals_reach_the_log_with_a_marker(self, tuned: Harness) -> None:
        gw = await gateway_for(tuned)
        await guess(gw, 4, start=70)
        assert_throttled(await gw.lookup("not a code at all"))
        entries = await access_entries(tuned, "?not a code a")
        assert [(e.actor_code, e.action) for e in entries if e.actor_code == gw.pharmacy.connection_code] == [
            (gw.pharmacy.connection_code, "lookup_throttled")
        ]

    async def test_dispensing_unknown_codes_counts_too(self, tuned: Harness) -> None:
        gw = await gateway_for(tuned)
        body = {"line_no": 1, "registration_no": "VD-1-1", "quantity": 1}
        for n in range(4):
            assert (await gw.dispense(unknown_code(80 + n), body)).status_code == 404
        assert_throttled(await gw.dispense(unknown_code(90), body))


class TestAtomicCounting:
    async def test_counts_then_slows_then_blocks(self, tuned: Harness) -> None:
        keys = throttle.secret_subjects(tuned.settings, client_id="01NTCOUNT1", address=new_address())
        seen = []
        for _ in range(6):
            async with tuned.runtime.database.sessionmaker() as session, session.begin():
                found, _ = await throttle.take(session, keys)
                seen.append("blocked" if found.blocked else "slowed" if found.slowed else "free")
        assert seen == ["free", "free", "slowed", "slowed", "blocked", "blocked"]

    async def test_concurrent_counts_are_all_kept(self, tuned: Harness) -> None:
        keys = throttle.lookup_subjects(tuned.settings, client_id="01NTCOUNT2")

        async def fail() -> None:
            async with tuned.runtime.database.sessionmaker() as session, session.begin():
                await throttle.count_failure(session, keys)

        await asyncio.gather(*(fail() for _ in range(12)))
        async with tuned.runtime.database.sessionmaker() as session:
            found = await throttle.verdict(session, tuned.settings, keys)
        assert found.blocked


@pytest.mark.postgres_only
class TestNoParallelSlip:
    async def test_sixty_parallel_wrong_secrets_check_only_the_limit(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = await make_harness(
            "postgresql", throttle_free_failures=5, throttle_block_failures=10, throttle_window_seconds=600
        )
        target = await harness.api.pharmacy()
        async with client_from(harness.app, new_address()) as attacker:
            answers = await asyncio.gather(
                *(pharmacy_token(attacker, target.connection_code, f"guess-{n}") for n in range(60))
            )
        codes = [r.status_code for r in answers]
        # Exactly the limit was checked (401); every other guess was refused unchecked.
        assert codes.count(401) == 10
        assert codes.count(429) == 50
        async with client_from(harness.app, new_address()) as owner:
            r = await pharmacy_token(owner, target.connection_code, target.client_secret)
            assert r.status_code == 200


SLOWED = "/tests/slowed"
COUNTED = "seed"


def _bump() -> TextClause:
    return text("UPDATE throttle_counter SET failures = failures + 1 WHERE key = :key").bindparams(
        key=COUNTED
    )


class TestASlowedAnswerHoldsNoConnection:
    """The wait a guesser is slowed by comes after its transaction: others write meanwhile."""

    @pytest.fixture
    async def slowed(self, harness: Harness) -> tuple[Harness, asyncio.Event]:
        written = asyncio.Event()

        async def slowed(pace: PaceDep, session: SessionDep, fail: bool = False) -> dict[str, bool]:
            # The row (SQLite: the database) stays locked until this transaction ends.
            await session.execute(_bump())
            pace.slow_down(600.0)
            written.set()
            if fail:
                raise NotFound("nothing here")
            return {"done": True}

        harness.app.add_api_route(SLOWED, slowed)
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO throttle_counter (key, expires_at, failures) VALUES (:key, :at, 0)"
                ).bindparams(key=COUNTED, at=utcnow() + timedelta(hours=1))
            )
        return harness, written

    @pytest.mark.parametrize(("fail", "kept"), [(False, 1), (True, 0)])
    async def test_others_write_while_the_slowed_answer_waits(
        self, slowed: tuple[Harness, asyncio.Event], fail: bool, kept: int
    ) -> None:
        harness, written = slowed
        answer = asyncio.create_task(harness.client.get(SLOWED, params={"fail": fail}))
        await written.wait()
        # The same lock, taken by another transaction: were the slowed request's transaction
        # still open, this would wait out the whole slowdown.
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            await asyncio.wait_for(session.execute(_bump()), timeout=60)
        assert not answer.done()  # ...while the slowed answer is still held back
        answer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await answer
        async with harness.runtime.database.sessionmaker() as session:
            found = await session.execute(
                text("SELECT failures FROM throttle_counter WHERE key = :key").bindparams(key=COUNTED)
            )
        # Committed before the wait, or rolled back before it.
        assert found.scalar_one() == kept + 1
