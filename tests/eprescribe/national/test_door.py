"""The national protocol's prescriber door over HTTP: sign-ins, doctors, gui-don-thuoc, one record."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import col

from eprescribe.prescriptions.models import Prescription
from kit import jsonstrict
from tests.conftest import Harness, HarnessFactory
from tests.eprescribe.national.http import (
    bearer,
    clinic,
    doctor_login,
    doctor_token,
    facility_login,
    fields,
    his_body,
    send,
    signed,
)
from tests.factories import stored_count


async def stored_row(harness: Harness, code: str) -> Prescription:
    async with harness.runtime.database.sessionmaker() as session:
        found = await session.execute(select(Prescription).where(col(Prescription.code) == code))
        return found.scalar_one()


class TestSignIn:
    async def test_facility_gets_a_bearer_token_that_the_contract_api_accepts(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        r = await facility_login(harness.client, c.facility)
        assert r.status_code == 200, r.text
        assert r.json()["token_type"] == "bearer"
        assert r.json()["expires_in"] == harness.settings.access_token_ttl_seconds
        listed = await harness.client.get(
            "/api/v1/prescriptions/XXXXX0000000-c", headers=bearer(r.json()["token"])
        )
        assert listed.status_code == 404  # a facility token: authenticated, the code is unknown

    async def test_wrong_secret_is_refused_in_the_dialect(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        r = await facility_login(harness.client, c.facility, "not-the-secret")
        assert r.status_code == 401
        assert isinstance(r.json()["success"], str) and r.json()["danh_sach_cac_loi"]

    async def test_missing_fields_are_named(self, harness: Harness) -> None:
        r = await harness.client.post("/api/auth/dang-nhap-co-so-kham-chua-benh", json={"password": "x"})
        assert r.status_code == 422
        assert "ma_lien_thong_co_so_kham_chua_benh" in fields(r)

    async def test_doctor_needs_to_be_added_at_the_facility_first(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        refused = await doctor_login(harness.client, c.facility.facility_code, c.doctor)
        assert refused.status_code == 401
        await doctor_token(harness.client, c)
        wrong = await doctor_login(harness.client, c.facility.facility_code, c.doctor, "wrong-password-123")
        assert wrong.status_code == 401

    async def test_a_new_password_ends_the_old_tokens(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        r = await harness.client.put(
            f"/api/v1/prescribers/{c.doctor.prescriber_id}/password",
            json={"password": "mot-mat-khau-moi-2027"},
            headers=await harness.api.admin_headers(),
        )
        assert r.status_code == 200, r.text
        old = await send(harness.client, token, signed(his_body(c), c.doctor))
        assert old.status_code == 401
        again = await doctor_login(
            harness.client, c.facility.facility_code, c.doctor, "mot-mat-khau-moi-2027"
        )
        assert again.status_code == 200

    async def test_a_short_password_is_refused_at_registration(self, harness: Harness) -> None:
        facility = await harness.api.facility()
        r = await harness.client.post(
            "/api/v1/prescribers",
            json={
                "full_name": "BS. Ngắn",
                "license_no": "000111/HNO-CCHN",
                "facility_codes": [facility.facility_code],
                "public_jwk": {"kty": "EC"},
                "password": "short",
            },
            headers=await harness.api.admin_headers(),
        )
        assert r.status_code == 422
        assert any(e["loc"][-1] == "password" for e in r.json()["errors"])


class TestDoctors:
    async def test_removed_doctor_can_no_longer_submit(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        facility_token = (await facility_login(harness.client, c.facility)).json()["token"]
        removed = await harness.client.post(
            "/api/v1/xoa-bac-si",
            json={"ma_lien_thong_bac_si": c.doctor.prescriber_id},
            headers=bearer(facility_token),
        )
        assert removed.status_code == 200, removed.text
        r = await send(harness.client, token, signed(his_body(c), c.doctor))
        assert r.status_code == 401
        assert await stored_count(harness, c.facility.facility_code) == 0
        again = await harness.client.post(
            "/api/v1/xoa-bac-si",
            json={"ma_lien_thong_bac_si": c.doctor.prescriber_id},
            headers=bearer(facility_token),
        )
        assert again.status_code == 422
        assert "ma_lien_thong_bac_si" in fields(again)

    async def test_suspending_the_facility_stops_its_doctors_at_once(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        admin = await harness.api.admin_headers()
        code = c.facility.facility_code
        suspended = await harness.client.post(f"/api/v1/facilities/{code}/suspend", headers=admin)
        assert suspended.status_code == 200, suspended.text
        refused = await send(harness.client, token, signed(his_body(c), c.doctor))
        assert refused.status_code == 401, refused.text
        assert await stored_count(harness, code) == 0
        # The same token works again once the facility is reinstated: nothing was revoked, only refused.
        restored = await harness.client.post(f"/api/v1/facilities/{code}/reinstate", headers=admin)
        assert restored.status_code == 200, restored.text
        accepted = await send(harness.client, token, signed(his_body(c), c.doctor))
        assert accepted.status_code == 200, accepted.text
        assert await stored_count(harness, code) == 1

    async def test_unknown_doctor_cannot_be_added(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = (await facility_login(harness.client, c.facility)).json()["token"]
        r = await harness.client.post(
            "/api/v1/them-bac-si", json={"ma_lien_thong_bac_si": "BS00000000"}, headers=bearer(token)
        )
        assert r.status_code == 422
        assert "ma_lien_thong_bac_si" in fields(r)
        assert r.json()["error"]["ma_lien_thong_bac_si"]


class TestSubmit:
    async def test_a_his_body_is_stored_as_one_contract_record(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        body = signed(his_body(c), c.doctor)
        r = await send(harness.client, token, body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert next(iter(answer)) == "success" and answer["success"] == "Gửi đơn thuốc thành công"
        assert answer["checksum"] == jsonstrict.checksum({k: v for k, v in body.items() if k != "signature"})
        code = body["ma_don_thuoc"]
        read = await harness.client.get(f"/api/v1/prescriptions/{code}", headers=c.facility.headers)
        assert read.status_code == 200, read.text
        view = read.json()
        assert view["status"] == "active"
        assert view["prescriber_id"] == c.doctor.prescriber_id
        assert view["patient"]["date_of_birth"] == "1987-03-05"
        assert view["patient"]["gender"] == "female"
        assert view["patient"]["weight_kg"] == 52.5
        assert [(i["registration_no"], i["quantity"], i["days_supply"]) for i in view["items"]] == [
            (c.paracetamol.registration_no, 20, 7),
            (c.amoxicillin.registration_no, 14, 7),
        ]
        assert view["jws"] == body["signature"]  # the prescriber's JWS, kept to verify again later
        row = await stored_row(harness, code)
        assert row.unsigned is False

    async def test_a_body_altered_after_signing_is_refused(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        body = signed(his_body(c), c.doctor)
        body["thong_tin_don_thuoc"][0]["so_luong"] = "200"
        r = await send(harness.client, token, body)
        assert r.status_code == 400
        assert "signature" in fields(r)
        assert "thay đổi sau khi ký" in r.json()["success"]
        assert await stored_count(harness, c.facility.facility_code) == 0

    async def test_a_signature_by_another_key_is_refused(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        other = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        forged = signed(his_body(c), type(c.doctor)(c.doctor.prescriber_id, other.doctor.key, ""))
        r = await send(harness.client, token, forged)
        assert r.status_code == 400
        assert "signature" in fields(r)
        assert await stored_count(harness, c.facility.facility_code) == 0

    async def test_unsigned_is_refused_by_default(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        r = await send(harness.client, token, his_body(c))
        assert r.status_code == 400
        assert "signature" in fields(r)
        assert await stored_count(harness, c.facility.facility_code) == 0

    async def test_the_same_code_twice_is_refused_as_in_use(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        first = his_body(c)
        assert (await send(harness.client, token, signed(first, c.doctor))).status_code == 200
        again = await send(harness.client, token, signed(first, c.doctor))
        assert again.status_code == 422
        assert "ma_don_thuoc" in fields(again)
        other = his_body(c, ma_don_thuoc=first["ma_don_thuoc"], loi_dan="khác")
        r = await send(harness.client, token, signed(other, c.doctor))
        assert r.status_code == 422
        assert "đã được sử dụng" in r.json()["success"]
        assert await stored_count(harness, c.facility.facility_code) == 1

    async def test_every_problem_of_a_body_is_listed(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        body = his_body(c, gioi_tinh="9", ngay_sinh_benh_nhan="1987-03-05", ma_dinh_danh_cong_dan="123")
        body["thong_tin_don_thuoc"][1]["ma_thuoc"] = "VD-00000-00"
        r = await send(harness.client, token, signed(body, c.doctor))
        assert r.status_code == 422
        assert {
            "gioi_tinh",
            "ngay_sinh_benh_nhan",
            "ma_dinh_danh_cong_dan",
            "thong_tin_don_thuoc.1.ma_thuoc",
        } <= set(fields(r))
        assert await stored_count(harness, c.facility.facility_code) == 0

    async def test_a_rule_broken_is_refused_in_the_dialect(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        token = await doctor_token(harness.client, c)
        body = his_body(c)
        start = body["dot_dung_thuoc"]["tu_ngay"]
        day, month, year = (int(p) for p in start.split("/"))
        body["dot_dung_thuoc"]["den_ngay"] = (date(year, month, day) + timedelta(days=44)).strftime(
            "%d/%m/%Y"
        )
        r = await send(harness.client, token, signed(body, c.doctor))
        assert r.status_code == 422, r.text
        assert "dot_dung_thuoc" in fields(r)
        assert await stored_count(harness, c.facility.facility_code) == 0

    async def test_a_facility_token_cannot_submit(self, harness: Harness) -> None:
        c = await clinic(harness.api)
        await doctor_token(harness.client, c)
        r = await send(harness.client, c.facility.token, signed(his_body(c), c.doctor))
        assert r.status_code == 403
        assert r.json()["danh_sach_cac_loi"]


class TestLegacyUnsigned:
    async def test_admitted_with_the_setting_and_marked(self, make_harness: HarnessFactory) -> None:
        for engine in ("sqlite", "postgresql"):
            harness = await make_harness(engine, national_accept_unsigned=True)
            c = await clinic(harness.api)
            token = await doctor_token(harness.client, c)
            body = his_body(c)
            r = await send(harness.client, token, body)
            assert r.status_code == 200, r.text
            row = await stored_row(harness, body["ma_don_thuoc"])
            assert row.unsigned is True
            assert row.jws == ""
            # The same unsigned body again is a replay, refused like any duplicate.
            again = await send(harness.client, token, body)
            assert again.status_code == 422
