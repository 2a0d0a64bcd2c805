"""The patient and guardian of a gui-don-thuoc body, as the contract's `patient` object."""

from __future__ import annotations

import re
from typing import Any

from eprescribe.national import values
from eprescribe.national.problems import FORMAT, INVALID, Problems
from eprescribe.national.schemas import GuiDonThuoc

# gioi_tinh: 1 unknown, 2 male, 3 female. The contract has no "unknown": "other" carries it.
GENDER_FROM_DIALECT = {1: "other", 2: "male", 3: "female"}
GENDER_TO_DIALECT = {value: key for key, value in GENDER_FROM_DIALECT.items()}
_NATIONAL_ID = re.compile(r"^[0-9]{12}$")
_INSURANCE_NO = re.compile(r"^[A-Z]{2}[0-9]{13}$")


def patient(body: GuiDonThuoc, problems: Problems) -> dict[str, Any]:
    """Map the patient fields; absent optional values are left out, wrong ones recorded."""
    found: dict[str, Any] = {
        "full_name": values.text(body.ho_ten_benh_nhan, ("ho_ten_benh_nhan",), problems, required=True),
        "date_of_birth": _iso(
            values.dmy_date(body.ngay_sinh_benh_nhan, ("ngay_sinh_benh_nhan",), problems, required=True)
        ),
        "gender": _gender(body.gioi_tinh, problems),
        "national_id": national_id(body.ma_dinh_danh_cong_dan, ("ma_dinh_danh_cong_dan",), problems),
        "insurance_no": _insurance_no(body.ma_so_the_bao_hiem_y_te, problems),
        "weight_kg": values.decimal(
            body.can_nang, ("can_nang",), problems, minimum=0, maximum=400, zero_is_absent=True
        ),
        "phone": values.phone(
            body.so_dien_thoai_nguoi_kham_benh, ("so_dien_thoai_nguoi_kham_benh",), problems
        ),
        "address": values.text(body.dia_chi, ("dia_chi",), problems, max_length=500),
    }
    # Free text in the dialect ("Họ tên, SĐT, địa chỉ" in some HIS): kept whole as the name, so
    # nothing the doctor wrote is lost and nothing is guessed out of it.
    guardian = values.text(body.thong_tin_nguoi_giam_ho, ("thong_tin_nguoi_giam_ho",), problems)
    if guardian is not None:
        found["guardian"] = {"full_name": guardian}
    # ma_dinh_danh_y_te has no place in the contract; it is still read so a wrong type is reported.
    values.text(body.ma_dinh_danh_y_te, ("ma_dinh_danh_y_te",), problems, max_length=64)
    return {key: value for key, value in found.items() if value is not None}


def national_id(raw: Any, loc: tuple[str | int, ...], problems: Problems) -> str | None:
    """Read a 12-digit citizen ID (căn cước)."""
    value = values.text(raw, loc, problems, max_length=40)
    if value is None:
        return None
    value = value.replace(" ", "")
    if not _NATIONAL_ID.match(value):
        hint = " (gửi dạng chuỗi để giữ các số 0 ở đầu)" if isinstance(raw, int) else ""
        problems.add(loc, f"số định danh công dân phải gồm đúng 12 chữ số{hint}, nhận được {value!r}", FORMAT)
        return None
    return value


def _insurance_no(raw: Any, problems: Problems) -> str | None:
    loc = ("ma_so_the_bao_hiem_y_te",)
    value = values.text(raw, loc, problems, max_length=40)
    if value is None:
        return None
    value = value.replace(" ", "").upper()
    if not _INSURANCE_NO.match(value):
        problems.add(
            loc,
            f"mã thẻ BHYT phải gồm 15 ký tự: 2 chữ cái và 13 chữ số (ví dụ GD4797932146557), nhận được {value!r}",
            FORMAT,
        )
        return None
    return value


def _gender(raw: Any, problems: Problems) -> str | None:
    loc = ("gioi_tinh",)
    code = values.integer(raw, loc, problems, required=True)
    if code is None:
        return None
    if code not in GENDER_FROM_DIALECT:
        problems.add(
            loc, f"giới tính phải là 1 (chưa xác định), 2 (nam) hoặc 3 (nữ), nhận được {code}", INVALID
        )
        return None
    return GENDER_FROM_DIALECT[code]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
