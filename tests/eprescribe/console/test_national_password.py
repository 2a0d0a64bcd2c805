"""The facility's console sets a prescriber's national-protocol password (dang-nhap-bac-si)."""

from __future__ import annotations

from tests.clients import Browsers
from tests.factories import Api

PATH = "/console/prescriber/prescribers/{}/password"


async def doctor_login(api: Api, facility_code: str, prescriber_id: str, password: str) -> int:
    r = await api.client.post(
        "/api/auth/dang-nhap-bac-si",
        json={
            "ma_lien_thong_co_so_kham_chua_benh": facility_code,
            "ma_lien_thong_bac_si": prescriber_id,
            "password": password,
        },
    )
    return r.status_code


class TestPrescriberPassword:
    async def test_the_facility_sets_the_password_of_its_prescriber(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        browser = browsers()
        await browser.prescriber_sign_in(w.facility)
        page = await browser.get("/console/prescriber/prescribers")
        assert PATH.format(w.prescriber.prescriber_id) in page.text
        code = w.facility.facility_code
        assert await doctor_login(api, code, w.prescriber.prescriber_id, "mat-khau-moi-0001") == 401
        r = await browser.post_form(
            PATH.format(w.prescriber.prescriber_id), {"password": "mat-khau-moi-0001"}
        )
        assert r.status_code == 303, r.text
        done = await browser.get(r.headers["location"])
        assert "Đã đặt mật khẩu" in done.text
        assert await doctor_login(api, code, w.prescriber.prescriber_id, "mat-khau-moi-0001") == 200

    async def test_not_for_another_facilitys_prescriber_nor_without_csrf(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        elsewhere = await api.facility()
        stranger = await api.prescriber([elsewhere.facility_code])
        browser = browsers()
        await browser.prescriber_sign_in(w.facility)
        await browser.get("/console/prescriber/prescribers")
        refused = await browser.post_form(
            PATH.format(stranger.prescriber_id), {"password": "mat-khau-moi-0002"}
        )
        assert refused.status_code == 403
        forged = await browser.post_form(
            PATH.format(w.prescriber.prescriber_id), {"password": "mat-khau-moi-0003"}, with_csrf=False
        )
        assert forged.status_code in (400, 403)
        short = await browser.post_form(PATH.format(w.prescriber.prescriber_id), {"password": "ngan"})
        assert short.status_code == 422
        assert (
            await doctor_login(api, w.facility.facility_code, w.prescriber.prescriber_id, "mat-khau-moi-0003")
            == 401
        )
        assert (
            await doctor_login(api, elsewhere.facility_code, stranger.prescriber_id, "mat-khau-moi-0002")
            == 401
        )
