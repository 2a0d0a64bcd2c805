"""A stored prescription as the pharmacy read answer of `thong-tin-don-thuoc`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eprescribe.national.mapping import split_notes
from eprescribe.national.patient import GENDER_TO_DIALECT
from eprescribe.national.schemas import ChanDoanView, DongThuocView, ThongTinDonThuoc
from eprescribe.national.stored import StoredItem, StoredPrescription
from kit.time import VIETNAM_TIME

LOCAL_TIME = "%Y-%m-%d %H:%M:%S"


def local_time(value: datetime) -> str:
    """Render an instant as the dialect's `yyyy-MM-dd HH:mm:ss` in Vietnam time."""
    return value.astimezone(VIETNAM_TIME).strftime(LOCAL_TIME)


def initials(full_name: str) -> str:
    """`Trần Thị Bình` -> `T. T. B.`, as the pharmacy gateway shows HIV/AIDS patients."""
    return " ".join(f"{word[0].upper()}." for word in full_name.split() if word)


def drug_name(item: StoredItem) -> str:
    """Write a line the way `ten_thuoc` does: the active ingredient and its strength."""
    ingredient = item.active_ingredient[:1].upper() + item.active_ingredient[1:]
    return f"{ingredient} {item.strength}"


def read_answer(rx: StoredPrescription, *, include_diagnoses: bool) -> dict[str, Any]:
    """Build the read answer; the caller decides whether this reader may see the diagnoses.

    HIV/AIDS prescriptions (`sensitive`) never show the diagnoses or the patient's name.
    """
    advice, caution = split_notes(rx.notes)
    show_diagnoses = include_diagnoses and not rx.sensitive
    patient = rx.patient
    follow_up: int | str = (
        (rx.follow_up_date - rx.issued_at.astimezone(VIETNAM_TIME).date()).days if rx.follow_up_date else ""
    )
    answer = ThongTinDonThuoc(
        ma_don_thuoc=rx.code,
        loai_don_thuoc=rx.kind,
        trang_thai=rx.status,
        ho_ten_benh_nhan=initials(patient.full_name) if rx.sensitive else patient.full_name,
        ngay_sinh_benh_nhan=patient.date_of_birth.strftime("%d/%m/%Y"),
        gioi_tinh=GENDER_TO_DIALECT.get(patient.gender, 1),
        chan_doan=[
            ChanDoanView(ma_chan_doan=d.icd10, ten_chan_doan=d.text, ket_luan="") for d in rx.diagnoses
        ]
        if show_diagnoses
        else [],
        loi_dan=advice,
        luu_y=caution,
        ten_bac_si=rx.prescriber_name,
        ten_co_so_kham_chua_benh=rx.facility_name,
        ngay_gio_ke_don=local_time(rx.issued_at),
        ngay_het_han=local_time(rx.valid_until),
        ngay_tai_kham=follow_up,
        thong_tin_don_thuoc=[
            DongThuocView(
                id=item.line_id,
                ma_thuoc=item.registration_no or "",
                biet_duoc=item.brand_name or "",
                ten_thuoc=drug_name(item),
                don_vi_tinh=item.unit,
                so_luong=item.quantity,
                cach_dung=item.instructions,
                so_luong_con_lai=item.remaining,
            )
            for item in rx.items
        ],
    )
    return answer.model_dump()
