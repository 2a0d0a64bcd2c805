"""PostgreSQL only: a Hypothesis state machine interleaving every gateway operation.

Lookups, dispenses (some retried with the same Idempotency-Key), voids (by the owner or by
another pharmacy) and cancellations run against a real server; after every step the national
record must balance: dispensed + remaining = prescribed, nothing negative, and both equal to
what the model expects.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import Harness
from tests.factories import Pharmacy, World, dispense_body, line, payload_for

pytestmark = pytest.mark.postgres_only


@dataclass
class ModelPrescription:
    prescribed: list[int]
    dispensed: list[int]
    cancelled: bool = False

    @property
    def expected_status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if all(d == p for d, p in zip(self.dispensed, self.prescribed, strict=True)):
            return "dispensed"
        return "partially_dispensed" if any(self.dispensed) else "active"


@dataclass
class ModelDispense:
    code: str
    owner: int
    dispense_id: str
    quantities: dict[int, int]
    voided: bool = False


@dataclass
class Scene:
    base_url: str
    world: World
    registration_no: str
    pharmacies: list[Pharmacy]


def machine_for(scene: Scene) -> type[RuleBasedStateMachine]:
    """The machine class, closed over one prepared world and its pharmacies."""

    class Dispensing(RuleBasedStateMachine):
        prescriptions = Bundle("prescriptions")
        dispenses = Bundle("dispenses")

        def __init__(self) -> None:
            super().__init__()
            self.http = httpx.Client(base_url=scene.base_url, timeout=60)
            self.model: dict[str, ModelPrescription] = {}

        def teardown(self) -> None:
            self.http.close()

        def _headers(self, pharmacy: int, **extra: str) -> dict[str, str]:
            return {**scene.pharmacies[pharmacy].headers, **extra}

        @rule(target=prescriptions, quantities=st.lists(st.integers(1, 6), min_size=1, max_size=3))
        def prescribe(self, quantities: list[int]) -> str:
            w = scene.world
            product = w.products["normal"]
            payload = payload_for(
                w, items=[product.line(quantity=q) for q in quantities], notes=secrets.token_hex(8)
            )
            r = self.http.post(
                "/api/v1/prescriptions", json={"jws": w.prescriber.sign(payload)}, headers=w.facility.headers
            )
            assert r.status_code == 201, r.text
            code: str = r.json()["code"]
            self.model[code] = ModelPrescription(prescribed=quantities, dispensed=[0] * len(quantities))
            return code

        @rule(code=prescriptions, pharmacy=st.integers(0, 2), lower=st.booleans())
        def lookup(self, code: str, pharmacy: int, lower: bool) -> None:
            r = self.http.get(
                f"/gateway/v1/prescriptions/{code.lower() if lower else code}",
                headers=self._headers(pharmacy),
            )
            assert r.status_code == 200, r.text
            m = self.model[code]
            assert r.json()["status"] == m.expected_status
            assert [i["dispensed"] for i in r.json()["items"]] == m.dispensed

        @rule(
            target=dispenses,
            code=prescriptions,
            pharmacy=st.integers(0, 2),
            wanted=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=3),
            retry=st.booleans(),
        )
        def dispense(self, code: str, pharmacy: int, wanted: list[tuple[int, int]], retry: bool) -> Any:
            m = self.model[code]
            body = dispense_body(*(line(n, scene.registration_no, q) for n, q in wanted))
            key = secrets.token_hex(8)
            path = f"/gateway/v1/prescriptions/{code}/dispenses"
            r = self.http.post(path, json=body, headers=self._headers(pharmacy, **{"Idempotency-Key": key}))
            per_line: dict[int, int] = {}
            for n, q in wanted:
                per_line[n] = per_line.get(n, 0) + q
            if m.cancelled or m.expected_status == "dispensed":
                expected = 409
            elif any(n > len(m.prescribed) for n in per_line):
                expected = 422
            elif any(q > m.prescribed[n - 1] - m.dispensed[n - 1] for n, q in per_line.items()):
                expected = 409
            else:
                expected = 201
            assert r.status_code == expected, (expected, r.text)
            if retry:
                again = self.http.post(
                    path, json=body, headers=self._headers(pharmacy, **{"Idempotency-Key": key})
                )
                assert again.status_code == r.status_code
                if r.status_code == 201:
                    assert again.json() == r.json()
            if r.status_code != 201:
                return multiple()
            for n, q in per_line.items():
                m.dispensed[n - 1] += q
            assert r.json()["prescription_status"] == m.expected_status
            return ModelDispense(code, pharmacy, r.json()["dispense_id"], per_line)

        @rule(d=dispenses, by_owner=st.booleans())
        def void(self, d: ModelDispense, by_owner: bool) -> None:
            who = d.owner if by_owner else (d.owner + 1) % len(scene.pharmacies)
            r = self.http.post(
                f"/gateway/v1/dispenses/{d.dispense_id}/void",
                json={"reason": "Sửa sai"},
                headers=self._headers(who),
            )
            if not by_owner:
                assert r.status_code == 404, r.text
                return
            if d.voided:
                assert r.status_code == 409, r.text
                return
            assert r.status_code == 200, r.text
            d.voided = True
            m = self.model[d.code]
            for n, q in d.quantities.items():
                m.dispensed[n - 1] -= q
            assert r.json()["prescription_status"] == m.expected_status

        @rule(code=prescriptions)
        def cancel(self, code: str) -> None:
            m = self.model[code]
            r = self.http.post(
                f"/api/v1/prescriptions/{code}/cancel",
                json={"reason": "Hủy"},
                headers=scene.world.facility.headers,
            )
            if m.cancelled or any(m.dispensed):
                assert r.status_code == 409, r.text
            else:
                assert r.status_code == 200, r.text
                m.cancelled = True

        @invariant()
        def record_balances(self) -> None:
            for code, m in self.model.items():
                r = self.http.get(f"/api/v1/prescriptions/{code}", headers=scene.world.facility.headers)
                assert r.status_code == 200, r.text
                view = r.json()
                assert view["status"] == m.expected_status
                for item, prescribed, dispensed in zip(view["items"], m.prescribed, m.dispensed, strict=True):
                    assert item["quantity"] == prescribed
                    assert item["dispensed"] + item["remaining"] == prescribed
                    assert item["dispensed"] >= 0 and item["remaining"] >= 0
                    assert item["dispensed"] == dispensed

    return Dispensing


async def test_interleaved_operations_keep_the_record_balanced(pg_harness: Harness, live: str) -> None:
    api = pg_harness.api
    w = await api.world()
    pharmacies = [await api.pharmacy() for _ in range(3)]
    scene = Scene(live, w, w.products["normal"].registration_no, pharmacies)
    machine = machine_for(scene)
    config = settings(
        max_examples=20,
        stateful_step_count=15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    # The machine is synchronous (httpx.Client): run it off the test's event loop.
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=config)
