"""Dispensing: partial, across pharmacies, substitution, controlled kinds, all-or-nothing, retries."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from eprescribe.registry import service as registry
from pharmacy_gateway.dispensing import service as gateway
from pharmacy_gateway.dispensing.models import Dispense
from tests.clients import Gateway, gateway_for
from tests.conftest import Harness
from tests.factories import PHARMACIST, Api, World, dispense_body, facility_view, line, now_iso, prescribe


async def dispense_count(harness: Harness, code: str) -> int:
    async with harness.runtime.database.sessionmaker() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(Dispense).where(Dispense.prescription_code == code)  # type: ignore[arg-type]
                )
            ).scalar_one()
        )


async def balances(api: Api, w: World, code: str) -> tuple[str, list[tuple[int, int, int]]]:
    view = await facility_view(api, w, code)
    return view["status"], [(i["line_no"], i["dispensed"], i["remaining"]) for i in view["items"]]


async def two_line_prescription(api: Api, w: World) -> tuple[str, str, str]:
    """A prescription of 10 of one product and 5 of another; returns (code, first, second)."""
    first = w.products["normal"]
    second = await api.product(price=2000)
    code = await prescribe(api, w, items=[first.line(quantity=10), second.line(quantity=5)])
    return code, first.registration_no, second.registration_no


class TestPartialDispensing:
    async def test_status_moves_active_partial_dispensed_across_pharmacies(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        code, first, second = await two_line_prescription(api, world)
        other = await gateway_for(harness)
        assert await balances(api, world, code) == ("active", [(1, 0, 10), (2, 0, 5)])

        r = await gw.dispense(code, line(1, first, 4, unit_price=1500, batch_no="L01"))
        assert r.status_code == 201, r.text
        assert r.json()["prescription_status"] == "partially_dispensed"
        assert r.json()["items"] == [
            {"line_no": 1, "dispensed": 4, "remaining": 6},
            {"line_no": 2, "dispensed": 0, "remaining": 5},
        ]
        assert len(r.json()["dispense_id"]) >= 16

        r = await other.dispense(code.lower(), line(1, first, 6), line(2, second, 5))
        assert r.status_code == 201, r.text
        assert r.json()["prescription_status"] == "dispensed"
        assert await balances(api, world, code) == ("dispensed", [(1, 10, 0), (2, 5, 0)])

        r = await gw.dispense(code, line(1, first, 1))
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"

    async def test_more_than_remains_is_409_with_the_line(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        r = await gw.dispense(code, line(1, product, 11))
        assert r.status_code == 409
        assert r.json()["errors"][0]["loc"] == ["body", "items", 0, "quantity"]
        assert await balances(api, world, code) == ("active", [(1, 0, 10)])

    async def test_a_line_given_twice_adds_up_two_batches(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        r = await gw.dispense(code, line(1, product, 4, batch_no="A1"), line(1, product, 3, batch_no="B2"))
        assert r.status_code == 201, r.text
        assert r.json()["items"] == [{"line_no": 1, "dispensed": 7, "remaining": 3}]
        r = await gw.dispense(code, line(1, product, 2), line(1, product, 2))
        assert r.status_code == 409
        assert await balances(api, world, code) == ("partially_dispensed", [(1, 7, 3)])
        assert await dispense_count(harness, code) == 1

    async def test_all_or_nothing_across_lines(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        code, first, second = await two_line_prescription(api, world)
        r = await gw.dispense(code, line(1, first, 10), line(2, second, 6))
        assert r.status_code == 409
        assert r.json()["errors"][0]["loc"] == ["body", "items", 1, "quantity"]
        assert await balances(api, world, code) == ("active", [(1, 0, 10), (2, 0, 5)])
        assert await dispense_count(harness, code) == 0
        r = await gw.dispense(code, line(1, first, 10), line(2, "VD-00000-00-NOPE", 1))
        assert r.status_code == 422
        assert await balances(api, world, code) == ("active", [(1, 0, 10), (2, 0, 5)])


class TestSubstitution:
    async def test_generic_with_same_ingredient_strength_and_form_is_accepted(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        base = world.products["normal"]
        # Same line written differently: case and spacing are folded by the catalogue.
        generic = await api.product(
            ingredient=base.active_ingredient.upper(),
            strength="500 MG",
            dosage_form="Viên nén",
            name="Generic B",
        )
        code = await prescribe(api, world, items=[base.line(quantity=10, with_registration=True)])
        r = await gw.dispense(code, line(1, generic.registration_no, 10))
        assert r.status_code == 201, r.text

    @pytest.mark.parametrize(
        "difference",
        [{"strength": "250mg"}, {"dosage_form": "viên sủi"}, {"ingredient": "otheramol"}],
    )
    async def test_other_strength_form_or_ingredient_is_422(
        self, api: Api, world: World, gw: Gateway, difference: dict[str, str]
    ) -> None:
        base = world.products["normal"]
        values = {"ingredient": base.active_ingredient, **difference}
        wrong = await api.product(**values)  # type: ignore[arg-type]
        code = await prescribe(api, world)
        r = await gw.dispense(code, line(1, base.registration_no, 1), line(1, wrong.registration_no, 1))
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {
                "loc": ["body", "items", 1, "registration_no"],
                "msg": "the product's active ingredient, strength or dosage form differs from the prescribed line",
                "code": "product_differs_from_line",
            }
        ]
        assert await balances(api, world, code) == ("active", [(1, 0, 10)])

    async def test_unknown_product_and_unknown_line_are_422(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        r = await gw.dispense(code, line(1, "VD-99999-99-XXX", 1), line(7, product, 1))
        assert r.status_code == 422
        locs = [e["loc"] for e in r.json()["errors"]]
        assert locs == [["body", "items", 0, "registration_no"], ["body", "items", 1, "line_no"]]

    async def test_expired_batch_is_422(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        yesterday = (date.today() - timedelta(days=2)).isoformat()
        r = await gw.dispense(code, line(1, product, 1, expiry_date=yesterday))
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "items", 0, "expiry_date"]

    @pytest.mark.parametrize(
        ("item", "loc"),
        [
            ({"quantity": 0}, ["body", "items", 0, "quantity"]),
            ({"quantity": 1.5}, ["body", "items", 0, "quantity"]),
            ({"unit_price": -1}, ["body", "items", 0, "unit_price"]),
            ({"line_no": 0}, ["body", "items", 0, "line_no"]),
            ({"surprise": 1}, ["body", "items", 0, "surprise"]),
        ],
    )
    async def test_invalid_fields_are_422_with_their_location(
        self, api: Api, world: World, gw: Gateway, item: dict[str, object], loc: list[object]
    ) -> None:
        code = await prescribe(api, world)
        body = line(1, world.products["normal"].registration_no, 1)
        body.update(item)
        r = await gw.dispense(code, body)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == loc

    async def test_pharmacist_is_required(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        r = await gw.dispense(code, body={"items": [line(1, world.products["normal"].registration_no, 1)]})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "pharmacist"]


class TestWhoMayDispense:
    @pytest.mark.parametrize(("kind", "category"), [("n", "narcotic"), ("h", "psychotropic")])
    async def test_controlled_kinds_need_a_controlled_licence(
        self, harness: Harness, api: Api, world: World, kind: str, category: str
    ) -> None:
        product = world.products[category]
        code = await prescribe(api, world, kind=kind, items=[product.line(quantity=5, days_supply=5)])
        plain = await gateway_for(harness)
        licensed = await gateway_for(harness, controlled=True)
        r = await plain.dispense(code, line(1, product.registration_no, 1))
        assert r.status_code == 403
        assert await balances(api, world, code) == ("active", [(1, 0, 5)])
        log = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers)
        assert {
            "actor_kind": "pharmacy",
            "actor_code": plain.pharmacy.connection_code,
            "action": "dispense_denied",
        } in [{k: e[k] for k in ("actor_kind", "actor_code", "action")} for e in log.json()]
        r = await licensed.dispense(code, line(1, product.registration_no, 5))
        assert r.status_code == 201, r.text
        assert r.json()["prescription_status"] == "dispensed"

    async def test_cancelled_prescription_is_409(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        r = await api.client.post(
            f"/api/v1/prescriptions/{code}/cancel", json={"reason": "Kê nhầm"}, headers=world.facility.headers
        )
        assert r.status_code == 200
        r = await gw.dispense(code, line(1, world.products["normal"].registration_no, 1))
        assert r.status_code == 409 and "cancelled" in r.json()["detail"]

    async def test_replaced_prescription_is_409_its_replacement_is_not(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        product = world.products["normal"].registration_no
        old = await prescribe(api, world)
        new = await prescribe(api, world, replaces=old)
        r = await gw.dispense(old, line(1, product, 1))
        assert r.status_code == 409 and "replaced" in r.json()["detail"]
        assert (await gw.dispense(new, line(1, product, 1))).status_code == 201

    async def test_nothing_after_valid_until(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w, issued_at=now_iso(-timedelta(days=6)))
        gw = await gateway_for(tuned)
        r = await gw.dispense(code, line(1, w.products["normal"].registration_no, 1))
        assert r.status_code == 409 and "expired" in r.json()["detail"]

    async def test_unknown_prescription_is_404(self, world: World, gw: Gateway) -> None:
        r = await gw.dispense(f"{world.facility.facility_code}ZZZZZZZ-c", line(1, "VD-1", 1))
        assert r.status_code == 404

    async def test_dispense_is_logged_for_the_facility(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        assert (
            await gw.dispense(code, line(1, world.products["normal"].registration_no, 2))
        ).status_code == 201
        log = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers)
        mine = [e["action"] for e in log.json() if e["actor_code"] == gw.pharmacy.connection_code]
        assert mine == ["dispense"]


class TestIdempotency:
    async def test_retry_with_the_same_key_gets_the_first_answer(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        key = secrets.token_hex(8)
        first = await gw.dispense(code, line(1, product, 3), key=key)
        again = await gw.dispense(code, line(1, product, 3), key=key)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert await dispense_count(harness, code) == 1
        assert await balances(api, world, code) == ("partially_dispensed", [(1, 3, 7)])

    async def test_same_key_with_another_body_is_409(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        key = secrets.token_hex(8)
        assert (await gw.dispense(code, line(1, product, 3), key=key)).status_code == 201
        assert (await gw.dispense(code, line(1, product, 4), key=key)).status_code == 409
        assert await balances(api, world, code) == ("partially_dispensed", [(1, 3, 7)])

    async def test_keys_belong_to_one_pharmacy(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        other = await gateway_for(harness)
        key = secrets.token_hex(8)
        a = await gw.dispense(code, line(1, product, 3), key=key)
        b = await other.dispense(code, line(1, product, 3), key=key)
        assert a.status_code == b.status_code == 201
        assert a.json()["dispense_id"] != b.json()["dispense_id"]

    async def test_a_refused_dispense_leaves_the_key_free(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        key = secrets.token_hex(8)
        assert (await gw.dispense(code, line(1, product, 11), key=key)).status_code == 409
        # The same key with a corrected body is a new request, not a replay.
        assert (await gw.dispense(code, line(1, product, 10), key=key)).status_code == 201

    async def test_an_over_long_key_is_400(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        r = await gw.dispense(code, line(1, world.products["normal"].registration_no, 1), key="k" * 200)
        assert r.status_code == 400


class TestRecordKept:
    async def test_prices_batches_and_pharmacist_are_kept(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        product = world.products["normal"].registration_no
        body = dispense_body(
            line(1, product, 2, unit_price=1800, batch_no="LOT-7", expiry_date="2030-01-31"),
            pharmacist={"full_name": "DS. Phạm Thu Hà", "license_no": "998877/HCM-CCHND"},
        )
        r = await gw.dispense(code, body=body)
        assert r.status_code == 201
        history = (await gw.history()).json()["items"]
        assert history[0]["pharmacist"] == {"full_name": "DS. Phạm Thu Hà", "license_no": "998877/HCM-CCHND"}
        assert history[0]["items"] == [
            {
                "line_no": 1,
                "registration_no": product,
                "quantity": 2,
                "unit_price": 1800,
                "batch_no": "LOT-7",
                "expiry_date": "2030-01-31",
            }
        ]

    async def test_paid_price_medians_per_pharmacy_exclude_voids_and_unpriced(
        self, harness: Harness, api: Api, world: World
    ) -> None:
        product = await api.product(ingredient=f"medianol-{secrets.token_hex(3)}", price=5000)
        first = await gateway_for(harness)
        second = await gateway_for(harness)
        started = datetime.now(UTC) - timedelta(seconds=5)
        sales = [(first, 1000), (first, 3000), (first, 2000), (first, None), (second, 4000)]
        for outlet, price in sales:
            code = await prescribe(api, world, items=[product.line(quantity=1)])
            extra = {} if price is None else {"unit_price": price}
            assert (
                await outlet.dispense(code, line(1, product.registration_no, 1, **extra))
            ).status_code == 201
        code = await prescribe(api, world, items=[product.line(quantity=1)])
        voided = await second.dispense(code, line(1, product.registration_no, 1, unit_price=99_000))
        assert (await second.void(voided.json()["dispense_id"])).status_code == 200
        async with harness.runtime.database.sessionmaker() as session:
            medians = await gateway.paid_price_medians(
                session, registration_no=product.registration_no, since=started
            )
            later = await gateway.paid_price_medians(
                session,
                registration_no=product.registration_no,
                since=datetime.now(UTC) + timedelta(minutes=1),
            )
            ids = [await registry.get_pharmacy(session, o.pharmacy.connection_code) for o in (first, second)]
        first_id, second_id = (p.id for p in ids if p is not None)
        assert medians == {first_id: (2000, 3), second_id: (4000, 1)}
        assert later == {}

    async def test_no_idempotency_key_still_dispenses_once(
        self, harness: Harness, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        r = await gw.client.post(
            f"/gateway/v1/prescriptions/{code}/dispenses",
            json=dispense_body(line(1, world.products["normal"].registration_no, 1)),
            headers=gw.headers,
        )
        assert r.status_code == 201
        assert await dispense_count(harness, code) == 1
        assert PHARMACIST["full_name"] in (await gw.history()).text


class TestRefusalCodes:
    """Every field a refusal names carries a stable code and its values, beside the sentence."""

    async def test_too_much_and_an_expired_batch(self, api: Api, world: World, gw: Gateway) -> None:
        product = world.products["normal"].registration_no
        code = await prescribe(api, world)
        too_much = await gw.dispense(code, line(1, product, 999))
        assert too_much.status_code == 409
        error = too_much.json()["errors"][0]
        assert error["code"] == "quantity_exceeds_remaining"
        assert error["params"] == {"asked": 999, "line": 1, "remaining": 10}
        assert error["msg"] == "999 asked for line 1, only 10 remain"
        expired = await gw.dispense(code, line(1, product, 1, expiry_date="2020-01-31"))
        assert expired.status_code == 422
        assert expired.json()["errors"][0] | {"msg": ""} == {
            "loc": ["body", "items", 0, "expiry_date"],
            "msg": "",
            "code": "batch_expired",
        }

    async def test_a_validators_refusal_names_its_type(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        r = await gw.dispense(code, line(1, world.products["normal"].registration_no, "3"))  # type: ignore[arg-type]
        assert r.status_code == 422
        assert r.json()["errors"][0]["code"] == "int_type"
