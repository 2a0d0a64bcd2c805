"""Answers of the dialect's doors, and the way back from contract errors to dialect fields."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eprescribe.national.mapping import Submission
from eprescribe.national.problems import MISMATCH, Loc, MappingError, Problem
from eprescribe.national.schemas import (
    MSG_SALE_RECORDED,
    MSG_SUBMITTED,
    FailureAnswer,
    Loi,
    SubmitAnswer,
    TokenAnswer,
)

INVALID_STATUS = 422


def submitted(submission: Submission, code: str) -> dict[str, Any]:
    """Answer 200 to an accepted prescription; `success` is a string and comes first."""
    return SubmitAnswer(success=MSG_SUBMITTED, checksum=submission.checksum, ma_don_thuoc=code).model_dump()


def failure(message: str, problems: Iterable[Problem]) -> dict[str, Any]:
    """Answer 422: `success` carries the message, `danh_sach_cac_loi` every problem."""
    entries = [Loi.model_validate(problem.entry()) for problem in problems]
    return FailureAnswer(success=message, danh_sach_cac_loi=entries).model_dump()


def refused(error: MappingError) -> dict[str, Any]:
    """Answer 422 to a body that could not be mapped."""
    count = len(error.problems)
    return failure(f"Đơn thuốc không hợp lệ: có {count} lỗi, xem danh_sach_cac_loi", error.problems)


def code_in_use(code: str) -> dict[str, Any]:
    """Answer 422 to a prescription code already used, as the national system does."""
    problem = Problem(("ma_don_thuoc",), f"mã đơn thuốc {code} đã được sử dụng", MISMATCH)
    return failure(f"Mã đơn thuốc {code} đã được sử dụng trước đó", [problem])


def sale_recorded() -> dict[str, Any]:
    """Answer 200 to a sale report."""
    return {"success": MSG_SALE_RECORDED}


def token(value: str) -> dict[str, Any]:
    """Answer a successful sign-in."""
    return TokenAnswer(token=value).model_dump()


def sign_in_refused(message: str, problems: Sequence[Problem]) -> dict[str, Any]:
    """Answer a refused sign-in or doctor change.

    Besides `danh_sach_cac_loi`, `error` maps each field to its messages: HIS code written
    against the national system reads `error.ma_lien_thong_bac_si` as a list of strings.
    """
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        by_field.setdefault(problem.field, []).append(problem.message)
    return {**failure(message, problems), "error": by_field}


# Contract payload fields -> the dialect field they came from (see docs/national-protocol.md).
_PATIENT_FIELDS = {
    "full_name": "ho_ten_benh_nhan",
    "date_of_birth": "ngay_sinh_benh_nhan",
    "gender": "gioi_tinh",
    "national_id": "ma_dinh_danh_cong_dan",
    "insurance_no": "ma_so_the_bao_hiem_y_te",
    "weight_kg": "can_nang",
    "phone": "so_dien_thoai_nguoi_kham_benh",
    "address": "dia_chi",
    "guardian": "thong_tin_nguoi_giam_ho",
}
_ITEM_FIELDS = {
    "active_ingredient": "ma_thuoc",
    "strength": "ma_thuoc",
    "dosage_form": "ma_thuoc",
    "registration_no": "ma_thuoc",
    "quantity": "so_luong",
    "unit": "don_vi_tinh",
    "instructions": "cach_dung",
}
_TOP_FIELDS = {
    "code": "ma_don_thuoc",
    "kind": "loai_don_thuoc",
    "issued_at": "ngay_gio_ke_don",
    "notes": "loi_dan",
    "follow_up_date": "ngay_tai_kham",
    "diagnoses": "chan_doan",
    "items": "thong_tin_don_thuoc",
}


def dialect_loc(submission: Submission, loc: Sequence[str | int]) -> Loc:
    """Translate a contract error location (`["payload", "items", 0, "days_supply"]`) to the dialect."""
    parts = list(loc[1:] if loc and loc[0] == "payload" else loc)
    head = parts[0] if parts else None
    if head == "patient" and len(parts) > 1 and isinstance(parts[1], str):
        return (_PATIENT_FIELDS.get(parts[1], parts[1]),)
    if head == "items" and len(parts) > 1 and isinstance(parts[1], int):
        if len(parts) > 2 and parts[2] == "days_supply":
            return ("dot_dung_thuoc",)  # one round for the whole prescription
        field = _ITEM_FIELDS.get(str(parts[2]), str(parts[2])) if len(parts) > 2 else None
        return ("thong_tin_don_thuoc", parts[1], field) if field else ("thong_tin_don_thuoc", parts[1])
    if head == "diagnoses" and len(parts) > 1 and isinstance(parts[1], int):
        return submission.diagnosis_origins.get(parts[1], ("chan_doan",))
    if isinstance(head, str):
        return (_TOP_FIELDS.get(head, head),)
    return ()
