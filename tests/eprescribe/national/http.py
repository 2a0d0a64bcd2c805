"""The national protocol over HTTP as HIS and pharmacy software speak it: strings everywhere, "" for what is missing."""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from joserfc import jws
from joserfc.jwk import ECKey

from kit.time import VIETNAM_TIME
from tests.factories import ALNUM, Api, Facility, Pharmacy, Product, rand

PASSWORD = "mat-khau-bac-si-2026"


@dataclass
class Doctor:
    prescriber_id: str
    key: ECKey
    password: str


@dataclass
class Clinic:
    """A facility, a doctor registered elsewhere with a password, and the products its HIS prescribes."""

    facility: Facility
    doctor: Doctor
    paracetamol: Product
    amoxicillin: Product
    paracetamol_generic: Product  # another brand, same ingredient, strength and form


async def doctor(api: Api, facility_codes: list[str], *, password: str = PASSWORD) -> Doctor:
    key = ECKey.generate_key("P-256", private=True)
    r = await api.client.post(
        "/api/v1/prescribers",
        json={
            "full_name": f"BS. Phạm {rand(4)}",
            "license_no": f"{rand(6, string.digits)}/HNO-CCHN",
            "facility_codes": facility_codes,
            "public_jwk": key.as_dict(private=False),
            "controlled_allowed": False,
            "password": password,
        },
        headers=await api.admin_headers(),
    )
    assert r.status_code == 201, r.text
    return Doctor(r.json()["prescriber_id"], key, password)


async def clinic(api: Api) -> Clinic:
    facility = await api.facility()
    elsewhere = await api.facility()
    ingredient = f"paracetamol-{rand(5).lower()}"
    return Clinic(
        facility=facility,
        doctor=await doctor(api, [elsewhere.facility_code]),
        paracetamol=await api.product(ingredient=ingredient, name="Partamol 500"),
        amoxicillin=await api.product(ingredient=f"amoxicillin-{rand(5).lower()}", dosage_form="viên nang"),
        paracetamol_generic=await api.product(ingredient=ingredient, name="Hapacol 500"),
    )


def vn_now() -> datetime:
    return datetime.now(VIETNAM_TIME).replace(microsecond=0)


def new_code(facility_code: str, kind: str = "c") -> str:
    return f"{facility_code}{''.join(secrets.choice(ALNUM) for _ in range(7))}-{kind}"


def his_body(c: Clinic, **changes: Any) -> dict[str, Any]:
    """A prescription as a Windows HIS writes it: every value a string, "" for what it lacks."""
    today = vn_now()
    body: dict[str, Any] = {
        "loai_don_thuoc": "c",
        "ma_don_thuoc": new_code(c.facility.facility_code),
        "ho_ten_benh_nhan": "Nguyễn Thị Thu Hương",
        "ngay_sinh_benh_nhan": "5/3/1987",
        "gioi_tinh": "3",
        "ma_dinh_danh_y_te": "",
        "ma_dinh_danh_cong_dan": "001187012345",
        "ma_so_the_bao_hiem_y_te": "GD4797932146557",
        "can_nang": "52,5",
        "thong_tin_nguoi_giam_ho": "",
        "dia_chi": "Số 12 ngõ 34 phố Trần Duy Hưng, Cầu Giấy, Hà Nội",
        "chan_doan": [
            {"ma_chan_doan": "J02.9;K29.7", "ten_chan_doan": "Viêm họng cấp;Viêm dạ dày", "ket_luan": ""}
        ],
        "luu_y": "Không dùng chung với rượu bia",
        "hinh_thuc_dieu_tri": "2",
        "dot_dung_thuoc": {
            "dot": "1",
            "tu_ngay": today.strftime("%d/%m/%Y"),
            "den_ngay": (today + timedelta(days=6)).strftime("%d/%m/%Y"),
            "so_thang_thuoc": "",
        },
        "thong_tin_don_thuoc": [
            {
                "ma_thuoc": c.paracetamol.registration_no,
                "biet_duoc": "Partamol 500",
                "ten_thuoc": "Paracetamol 500mg",
                "don_vi_tinh": "Viên",
                "so_luong": "20",
                "cach_dung": "Uống 1 viên khi sốt trên 38,5 độ",
            },
            {
                "ma_thuoc": c.amoxicillin.registration_no,
                "biet_duoc": "",
                "ten_thuoc": "Amoxicillin 500mg",
                "don_vi_tinh": "viên",
                "so_luong": "14",
                "cach_dung": "Uống 1 viên x 2 lần/ngày sau ăn",
            },
        ],
        "loi_dan": "Uống nhiều nước; tái khám nếu sốt kéo dài",
        "so_dien_thoai_nguoi_kham_benh": "0912 345 678",
        "ngay_tai_kham": "7",
        "ngay_gio_ke_don": today.strftime("%Y-%m-%d %H:%M:%S"),
        "signature": "",
    }
    body.update(changes)
    return body


def signed(body: dict[str, Any], d: Doctor, **header: Any) -> dict[str, Any]:
    """Sign the body without `signature` (ES256, kid = the prescriber) and put the JWS in it."""
    content = {k: v for k, v in body.items() if k != "signature"}
    payload = json.dumps(content, ensure_ascii=False).encode()
    compact = jws.serialize_compact(
        {"alg": "ES256", "kid": d.prescriber_id, **header}, payload, d.key, algorithms=["ES256"]
    )
    return {**body, "signature": compact}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def facility_login(
    client: httpx.AsyncClient, facility: Facility, password: str | None = None
) -> httpx.Response:
    return await client.post(
        "/api/auth/dang-nhap-co-so-kham-chua-benh",
        json={
            "ma_lien_thong_co_so_kham_chua_benh": facility.facility_code,
            "password": facility.client_secret if password is None else password,
        },
    )


async def doctor_login(
    client: httpx.AsyncClient, facility_code: str, d: Doctor, password: str | None = None
) -> httpx.Response:
    return await client.post(
        "/api/auth/dang-nhap-bac-si",
        json={
            "ma_lien_thong_co_so_kham_chua_benh": facility_code,
            "ma_lien_thong_bac_si": d.prescriber_id,
            "password": d.password if password is None else password,
        },
    )


async def doctor_token(client: httpx.AsyncClient, c: Clinic) -> str:
    """Facility login, them-bac-si, doctor login: the doctor's bearer token at the clinic."""
    login = await facility_login(client, c.facility)
    assert login.status_code == 200, login.text
    added = await client.post(
        "/api/v1/them-bac-si",
        json={"ma_lien_thong_bac_si": c.doctor.prescriber_id},
        headers=bearer(login.json()["token"]),
    )
    assert added.status_code == 200, added.text
    r = await doctor_login(client, c.facility.facility_code, c.doctor)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def send(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/v1/gui-don-thuoc", json=body, headers=bearer(token))


def app_headers(pharmacy: Pharmacy, key: str | None = None) -> dict[str, str]:
    return {"app-name": pharmacy.connection_code, "app-key": pharmacy.client_secret if key is None else key}


async def read(client: httpx.AsyncClient, pharmacy: Pharmacy, code: str) -> httpx.Response:
    return await client.get(f"/api/v1/thong-tin-don-thuoc/{code}", headers=app_headers(pharmacy))


def sale_body(
    pharmacy: Pharmacy, code: str, *lines: tuple[dict[str, Any], str, str], invoice: str = ""
) -> dict[str, Any]:
    """A cap-nhat-don-thuoc body: (line of the read answer, ma_thuoc sold, so_luong_ban) per line."""
    return {
        "ma_don_thuoc": code,
        "thong_tin_thuoc": [
            {
                "ma_thuoc_da_ke_don": str(line["id"]),
                "ma_thuoc": registration_no,
                "biet_duoc": line["biet_duoc"],
                "ten_thuoc": line["ten_thuoc"],
                "don_vi_tinh": line["don_vi_tinh"],
                "so_luong": str(line["so_luong"]),
                "cach_dung": line["cach_dung"],
                "so_luong_ban": sold,
            }
            for line, registration_no, sold in lines
        ],
        "ma_dinh_danh_co_so_cung_ung_thuoc": pharmacy.connection_code,
        "ten_co_so_cung_ung_thuoc": "Nhà thuốc Minh Châu",
        "so_dien_thoai_co_so_cung_ung_thuoc": "",
        "dia_chi_co_so_cung_ung_thuoc": "",
        "ma_hoa_don": invoice,
    }


async def sell(client: httpx.AsyncClient, pharmacy: Pharmacy, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/v1/cap-nhat-don-thuoc", json=body, headers=app_headers(pharmacy))


def fields(r: httpx.Response) -> dict[str, str]:
    """The dialect's refusal: field -> message, from `danh_sach_cac_loi`."""
    return {e["truong"]: e["thong_bao"] for e in r.json()["danh_sach_cac_loi"]}
