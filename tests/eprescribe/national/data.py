"""Realistic Vietnamese test data: the shipped catalogue and bodies written the way HIS software does."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from eprescribe.national.catalogue import CatalogueEntry
from eprescribe.national.stored import (
    StoredDiagnosis,
    StoredDispense,
    StoredDispenseLine,
    StoredGuardian,
    StoredItem,
    StoredPatient,
    StoredPrescription,
)
from kit.time import VIETNAM_TIME

FACILITY = "25366"


@lru_cache(maxsize=1)
def catalogue() -> dict[str, CatalogueEntry]:
    """The products of eprescribe/catalogue/data/drugs.csv, by registration number."""
    text = (resources.files("eprescribe.catalogue") / "data" / "drugs.csv").read_text(encoding="utf-8")
    return {
        row["registration_no"]: CatalogueEntry(
            row["registration_no"], row["active_ingredient"], row["strength"], row["dosage_form"], row["unit"]
        )
        for row in csv.DictReader(io.StringIO(text))
    }


def resolve(number: str) -> CatalogueEntry | None:
    return catalogue().get(number)


def his_body(**changes: Any) -> dict[str, Any]:
    """An ordinary prescription as a Windows HIS sends it: strings everywhere, "" for what it lacks."""
    body: dict[str, Any] = {
        "loai_don_thuoc": "c",
        "ma_don_thuoc": "25366VMA336R-c",
        "ho_ten_benh_nhan": "Nguyễn Thị Thu Hương",
        "ngay_sinh_benh_nhan": "5/3/1987",
        "gioi_tinh": "3",
        "ma_dinh_danh_y_te": "",
        "ma_dinh_danh_cong_dan": "001187012345",
        "ma_so_the_bao_hiem_y_te": "GD4797932146557",
        "can_nang": "52,5",
        "thong_tin_nguoi_giam_ho": "",
        "dia_chi": "Số 12 ngõ 34 phố Trần Duy Hưng, phường Trung Hòa, quận Cầu Giấy, Hà Nội",
        "chan_doan": [
            {"ma_chan_doan": "J02.9;K29.7", "ten_chan_doan": "Viêm họng cấp;Viêm dạ dày", "ket_luan": ""}
        ],
        "luu_y": "Không dùng chung với rượu bia",
        "hinh_thuc_dieu_tri": "2",
        "dot_dung_thuoc": {
            "dot": "1",
            "tu_ngay": "22/11/2026",
            "den_ngay": "28/11/2026",
            "so_thang_thuoc": "",
        },
        "thong_tin_don_thuoc": [
            {
                "ma_thuoc": "VD-15841-13",
                "biet_duoc": "Partamol 500",
                "ten_thuoc": "Paracetamol 500mg",
                "don_vi_tinh": "Viên",
                "so_luong": "20",
                "cach_dung": "Uống 1 viên khi sốt trên 38,5 độ, cách nhau ít nhất 4 giờ",
            },
            {
                "ma_thuoc": "893110693373",
                "biet_duoc": "Amoxicilin 500mg Domesco",
                "ten_thuoc": "Amoxicillin 500mg",
                "don_vi_tinh": "viên",
                "so_luong": 14,
                "cach_dung": "Uống 1 viên x 2 lần/ngày sau ăn",
            },
        ],
        "loi_dan": "Uống nhiều nước, nghỉ ngơi; tái khám nếu sốt kéo dài",
        "so_dien_thoai_nguoi_kham_benh": "0912 345 678",
        "ngay_tai_kham": "7",
        "ngay_gio_ke_don": "2026-11-22 09:30:00",
        "signature": "",
    }
    body.update(changes)
    return body


def stored_from_payload(
    payload: dict[str, Any],
    *,
    status: str = "active",
    dispensed: dict[int, int] | None = None,
    dispenses: tuple[StoredDispense, ...] = (),
    sensitive: bool = False,
    replaced_by: str | None = None,
    cancel_reason: str | None = None,
) -> StoredPrescription:
    """Store a payload the way the service would (valid 5 days, lines numbered from 1)."""
    issued_at = datetime.fromisoformat(payload["issued_at"])
    patient = payload["patient"]
    guardian = patient.get("guardian")
    dispensed = dispensed or {}
    return StoredPrescription(
        code=payload["code"],
        kind=payload["kind"],
        status=status,
        facility_code=payload["facility_code"],
        facility_name="Bệnh viện Đa khoa Xanh Pôn",
        prescriber_id="BS7K2M9Q4X",
        prescriber_name="Trần Văn Bình",
        prescriber_license_no="001234/HNO-CCHN",
        issued_at=issued_at,
        valid_until=datetime.combine(issued_at.date(), time(23, 59, 59), VIETNAM_TIME) + timedelta(days=4),
        patient=StoredPatient(
            full_name=patient["full_name"],
            date_of_birth=date.fromisoformat(patient["date_of_birth"]),
            gender=patient["gender"],
            national_id=patient.get("national_id"),
            insurance_no=patient.get("insurance_no"),
            weight_kg=patient.get("weight_kg"),
            phone=patient.get("phone"),
            address=patient.get("address"),
            guardian=StoredGuardian(**guardian) if guardian else None,
        ),
        diagnoses=tuple(StoredDiagnosis(d["icd10"], d["text"]) for d in payload["diagnoses"]),
        items=tuple(
            StoredItem(
                line_id=7_000_000_000 + line_no,
                line_no=line_no,
                active_ingredient=item["active_ingredient"],
                strength=item["strength"],
                dosage_form=item["dosage_form"],
                registration_no=item.get("registration_no"),
                quantity=item["quantity"],
                unit=item["unit"],
                instructions=item["instructions"],
                days_supply=item["days_supply"],
                dispensed=dispensed.get(line_no, 0),
                remaining=item["quantity"] - dispensed.get(line_no, 0),
                brand_name=None,
            )
            for line_no, item in enumerate(payload["items"], start=1)
        ),
        notes=payload.get("notes"),
        follow_up_date=date.fromisoformat(payload["follow_up_date"])
        if payload.get("follow_up_date")
        else None,
        replaces=payload.get("replaces"),
        replaced_by=replaced_by,
        cancel_reason=cancel_reason,
        sensitive=sensitive,
        dispenses=dispenses,
    )


def a_dispense(*, voided: bool = False, batch: bool = True) -> StoredDispense:
    """Half of line 1 and all of line 2, handed over at Nhà thuốc Minh Châu."""
    return StoredDispense(
        dispense_id="9f1c2b7e5d0a4c3e8b6a1f2d3c4b5a69",
        created_at=datetime(2026, 11, 22, 15, 5, tzinfo=VIETNAM_TIME),
        pharmacy_code="01NT4F7K2Q",
        pharmacy_name="Nhà thuốc Minh Châu",
        pharmacist_name="Lê Thị Mai",
        pharmacist_license_no="012345/HNO-CCHND",
        lines=(
            StoredDispenseLine(
                position=1,
                line_no=1,
                registration_no="VD-31944-18",
                quantity=10,
                batch_no="HP24118" if batch else None,
                expiry_date=date(2028, 5, 31) if batch else None,
                unit_price=700,
            ),
            StoredDispenseLine(position=2, line_no=2, registration_no="893110693373", quantity=14),
        ),
        voided_at=datetime(2026, 11, 22, 16, 0, tzinfo=VIETNAM_TIME) if voided else None,
        void_reason="Bán nhầm số lượng" if voided else None,
    )


# One realistic line per kind, from the shipped catalogue.
KIND_LINES: dict[str, dict[str, Any]] = {
    "c": {
        "ma_thuoc": "VD-15841-13",
        "biet_duoc": "Partamol 500",
        "ten_thuoc": "Paracetamol 500mg",
        "don_vi_tinh": "Viên",
    },
    "n": {
        "ma_thuoc": "893110156669",
        "biet_duoc": "Morphin 10mg Pharbaco",
        "ten_thuoc": "Morphin 10mg",
        "don_vi_tinh": "viên",
    },
    "h": {
        "ma_thuoc": "893110035744",
        "biet_duoc": "Diazepam 5mg Danapha",
        "ten_thuoc": "Diazepam 5mg",
        "don_vi_tinh": "viên",
    },
    "y": {
        "ma_thuoc": "893200007304",
        "biet_duoc": "Hoạt huyết dưỡng não",
        "ten_thuoc": "Cao đinh lăng + cao bạch quả",
        "don_vi_tinh": "viên",
    },
    "t": {
        "ma_thuoc": "VD-24283-16",
        "biet_duoc": "Dưỡng cốt hoàn",
        "ten_thuoc": "Cốt toái bổ + đỗ trọng",
        "don_vi_tinh": "gói",
    },
}
KIND_DIAGNOSES = {
    "c": {"ma_chan_doan": "J02.9", "ten_chan_doan": "Viêm họng cấp"},
    "n": {"ma_chan_doan": "C34.9", "ten_chan_doan": "U ác của phế quản hoặc phổi"},
    "h": {"ma_chan_doan": "F41.1", "ten_chan_doan": "Rối loạn lo âu lan tỏa"},
    "y": {"ma_chan_doan": "I67.9", "ten_chan_doan": "Bệnh mạch máu não"},
    "t": {"ma_chan_doan": "M47.8", "ten_chan_doan": "Thoái hóa cột sống"},
}


def body_of_kind(kind: str) -> dict[str, Any]:
    """A one-line prescription of `kind`; decoctions are counted in packs (so_thang_thuoc)."""
    line = {**KIND_LINES[kind], "so_luong": "10", "cach_dung": "Ngày 2 lần, mỗi lần 1 đơn vị, sau ăn"}
    round_of_days: dict[str, Any] = {
        "dot": "1",
        "tu_ngay": "22/11/2026",
        "den_ngay": "26/11/2026",
        "so_thang_thuoc": "",
    }
    if kind == "t":
        round_of_days = {"dot": 1, "tu_ngay": "", "den_ngay": "", "so_thang_thuoc": "10"}
    return his_body(
        loai_don_thuoc=kind.upper() if kind == "h" else kind,  # real systems write the letter in either case
        ma_don_thuoc=f"25366K7Q2M9X-{kind}",
        chan_doan=[{**KIND_DIAGNOSES[kind], "ket_luan": ""}],
        dot_dung_thuoc=round_of_days,
        thong_tin_don_thuoc=[line],
    )
