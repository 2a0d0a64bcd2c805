"""Every rule of the policy table refuses a signed prescription with the field that broke it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import Harness
from tests.factories import Api, World, child_birthdate, now_iso, payload_for, rejected_at, stored_count


class TestPolicy:
    """Each rule of the policy table, refused with 422 and the field named."""

    async def submit(self, api: Api, world: World, **kwargs: Any) -> Any:
        prescriber = world.controlled_prescriber if kwargs.get("kind", "c") in "nh" else world.prescriber
        return await api.submit(world.facility, prescriber.sign(payload_for(world, **kwargs)))

    async def test_days_of_supply_30_or_90_with_chronic_diagnosis(self, api: Api, world: World) -> None:
        normal = world.products["normal"]
        assert rejected_at(
            await self.submit(api, world, items=[normal.line(days_supply=31)]), "items", 0, "days_supply"
        )
        assert (await self.submit(api, world, items=[normal.line(days_supply=30)])).status_code == 201
        hypertension = [{"icd10": "I10", "text": "Tăng huyết áp vô căn"}]
        assert (
            await self.submit(api, world, items=[normal.line(days_supply=90)], diagnoses=hypertension)
        ).status_code == 201
        diabetes_subcode = [{"icd10": "E11.9", "text": "Đái tháo đường típ 2"}]
        assert (
            await self.submit(api, world, items=[normal.line(days_supply=90)], diagnoses=diabetes_subcode)
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, items=[normal.line(days_supply=91)], diagnoses=hypertension),
            "items",
            0,
            "days_supply",
        )

    async def test_narcotics_7_days_acute_10_per_round_for_cancer(self, api: Api, world: World) -> None:
        narcotic = world.products["narcotic"]
        assert rejected_at(
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=8)]),
            "items",
            0,
            "days_supply",
        )
        assert (
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=7)])
        ).status_code == 201
        cancer = [{"icd10": "C34.9", "text": "U ác tính phổi"}]
        assert (
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=10)], diagnoses=cancer)
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=11)], diagnoses=cancer),
            "items",
            0,
            "days_supply",
        )

    async def test_psychotropics_10_days_acute_30_long_term(self, api: Api, world: World) -> None:
        psycho = world.products["psychotropic"]
        assert rejected_at(
            await self.submit(api, world, kind="h", items=[psycho.line(days_supply=11)]),
            "items",
            0,
            "days_supply",
        )
        epilepsy = [{"icd10": "G40.9", "text": "Động kinh"}]
        assert (
            await self.submit(api, world, kind="h", items=[psycho.line(days_supply=30)], diagnoses=epilepsy)
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="h", items=[psycho.line(days_supply=31)], diagnoses=epilepsy),
            "items",
            0,
            "days_supply",
        )

    async def test_precursor_goes_on_a_psychotropic_prescription(self, api: Api, world: World) -> None:
        precursor = world.products["precursor"]
        assert (
            await self.submit(api, world, kind="h", items=[precursor.line(days_supply=5)])
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="c", items=[precursor.line(days_supply=5)]),
            "items",
            0,
            "active_ingredient",
        )

    async def test_child_under_72_months_needs_guardian_and_weight(self, api: Api, world: World) -> None:
        child = {"full_name": "Bé Na", "date_of_birth": child_birthdate(30), "gender": "female"}
        r = await self.submit(api, world, patient=child)
        assert rejected_at(r, "patient", "guardian") and rejected_at(r, "patient", "weight_kg")
        ok = child | {"weight_kg": 13.5, "guardian": {"full_name": "Nguyễn Thị Mẹ", "phone": "0912345678"}}
        assert (await self.submit(api, world, patient=ok)).status_code == 201
        older = {"full_name": "Bé Tí", "date_of_birth": child_birthdate(80), "gender": "male"}
        assert (await self.submit(api, world, patient=older)).status_code == 201

    async def test_narcotic_needs_national_id(self, api: Api, world: World) -> None:
        patient = {"full_name": "Lê Văn C", "date_of_birth": "1960-01-01", "gender": "male"}
        assert rejected_at(await self.submit(api, world, kind="n", patient=patient), "patient", "national_id")

    async def test_quantities_are_positive_integers(self, api: Api, world: World) -> None:
        line = world.products["normal"].line()
        for bad in (0, -3, 1.5, "3"):
            r = await self.submit(api, world, items=[line | {"quantity": bad}])
            assert rejected_at(r, "items", 0, "quantity"), bad

    async def test_one_kind_per_prescription(self, api: Api, world: World) -> None:
        items = [world.products["narcotic"].line(days_supply=5), world.products["normal"].line(days_supply=5)]
        r = await self.submit(api, world, kind="n", items=items)
        assert rejected_at(r, "items", 1, "active_ingredient")
        assert "split" in r.json()["errors"][0]["msg"]

    async def test_traditional_kinds(self, api: Api, world: World) -> None:
        herbal = world.products["traditional"]
        assert (await self.submit(api, world, kind="y", items=[herbal.line()])).status_code == 201
        assert (await self.submit(api, world, kind="t", items=[herbal.line()])).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="y", items=[world.products["normal"].line()]),
            "items",
            0,
            "active_ingredient",
        )

    async def test_supplements_are_never_prescribed(self, api: Api, world: World) -> None:
        r = await self.submit(api, world, items=[world.products["supplement"].line()])
        assert rejected_at(r, "items", 0, "active_ingredient") and "supplement" in r.json()["detail"]

    async def test_products_must_exist_and_match_the_line(self, api: Api, world: World) -> None:
        normal = world.products["normal"]
        unknown = normal.line(with_registration=True) | {"registration_no": "VD-00000-00-NOPE"}
        assert rejected_at(await self.submit(api, world, items=[unknown]), "items", 0, "registration_no")
        other = await api.product(strength="250mg", ingredient=normal.active_ingredient)
        mismatch = normal.line() | {"registration_no": other.registration_no}
        assert rejected_at(await self.submit(api, world, items=[mismatch]), "items", 0, "registration_no")
        spaced = normal.line(with_registration=True) | {"strength": normal.strength.replace("mg", " MG")}
        assert (await self.submit(api, world, items=[spaced])).status_code == 201
        unregistered = normal.line() | {"active_ingredient": "unobtainium"}
        assert rejected_at(
            await self.submit(api, world, items=[unregistered]), "items", 0, "active_ingredient"
        )

    async def test_issued_at_must_be_recent(self, api: Api, world: World) -> None:
        assert rejected_at(
            await self.submit(api, world, issued_at=now_iso(timedelta(minutes=30))), "issued_at"
        )
        assert rejected_at(
            await self.submit(api, world, issued_at=now_iso(-timedelta(hours=25))), "issued_at"
        )
        assert (await self.submit(api, world, issued_at=now_iso(-timedelta(hours=23)))).status_code == 201

    async def test_unknown_fields_and_bad_shapes_are_named(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        r = await self.submit(api, world, quantityy=3)
        assert rejected_at(r, "quantityy")
        r = await self.submit(api, world, diagnoses=[{"icd10": "not-icd", "text": "x"}])
        assert rejected_at(r, "diagnoses", 0, "icd10")
        r = await self.submit(
            api, world, patient={"full_name": "A", "date_of_birth": "2030-01-01", "gender": "male"}
        )
        assert rejected_at(r, "patient", "date_of_birth")
        assert await stored_count(harness, world.facility.facility_code) == 0


class TestRefusalCodes:
    async def test_days_of_supply_names_its_limit_and_rule(self, api: Api, world: World) -> None:
        normal = world.products["normal"]
        r = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, items=[normal.line(days_supply=31)]))
        )
        assert r.status_code == 422
        error = r.json()["errors"][0]
        assert error["code"] == "days_supply_over_limit" and error["params"] == {"days": 30, "rule": "normal"}

    async def test_a_signed_payload_field_names_its_type(self, api: Api, world: World) -> None:
        payload = payload_for(world)
        payload["patient"]["national_id"] = "123"
        r = await api.submit(world.facility, world.prescriber.sign(payload))
        assert r.status_code == 422
        error = r.json()["errors"][0]
        assert (
            error["loc"] == ["payload", "patient", "national_id"]
            and error["code"] == "string_pattern_mismatch"
        )
