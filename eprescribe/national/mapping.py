"""Map a gui-don-thuoc body to the fields of the contract's `PrescriptionPayload`.

The result is a plain dict the caller validates with `PrescriptionPayload` and then submits
through the same rules as any prescription. Every problem is collected before refusing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from eprescribe.national import clinical, reader, values
from eprescribe.national.catalogue import Resolver
from eprescribe.national.kinds import KINDS
from eprescribe.national.patient import patient
from eprescribe.national.problems import FORMAT, INVALID, MISMATCH, Loc, Problems
from eprescribe.national.schemas import GuiDonThuoc
from eprescribe.prescriptions.schemas import SignedFacts
from eprescribe.prescriptions.service import canonical_code
from kit import jsonstrict
from kit.time import vn_time

# loi_dan and luu_y share the contract's one `notes`; this mark lets the reverse mapping split
# them again (see split_notes).
NOTE_MARK = "Lưu ý: "
MAX_NOTES = 2000
MAX_FOLLOW_UP_DAYS = 3660


@dataclass(frozen=True)
class Submission:
    """A mapped submission: the payload fields and what the door needs to answer."""

    payload: dict[str, Any]
    checksum: str  # SHA-256 hex of the canonical JSON of the body without `signature`
    signature: str | None
    ignored_fields: tuple[str, ...] = ()
    diagnosis_origins: dict[int, Loc] = field(default_factory=dict)


def body_without_signature(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return the body as the prescriber signed it: everything but `signature`."""
    return {key: value for key, value in raw.items() if key != "signature"}


def registration_numbers(raw: Any) -> list[str]:
    """List the distinct ma_thuoc of a body, so an async catalogue can be read in one query."""
    read = reader.read(GuiDonThuoc, raw, Problems())
    found: list[str] = []
    for line in read.body.thong_tin_don_thuoc:
        number = values.text(line.ma_thuoc, (), Problems(), max_length=64)
        if number and number not in found:
            found.append(number)
    return found


def to_payload(raw: Any, *, facility_code: str, resolve: Resolver) -> Submission:
    """Map a raw body (parsed JSON) sent by the prescriber of `facility_code`; raise MappingError."""
    problems = Problems()
    read = reader.read(GuiDonThuoc, raw, problems)
    body = read.body
    kind = _kind(body.loai_don_thuoc, problems)
    code = _code(body.ma_don_thuoc, kind, facility_code, problems)
    issued_at = values.local_time(body.ngay_gio_ke_don, ("ngay_gio_ke_don",), problems, required=True)
    the_patient = patient(body, problems)
    diagnoses, origins = clinical.diagnoses(body.chan_doan, problems)
    days = clinical.days_of_supply(body.dot_dung_thuoc, kind, problems)
    items = clinical.items(body.thong_tin_don_thuoc, days, resolve, problems)
    notes = _notes(body, problems)
    follow_up_days = values.integer(
        body.ngay_tai_kham, ("ngay_tai_kham",), problems, minimum=0, maximum=MAX_FOLLOW_UP_DAYS
    )
    # hinh_thuc_dieu_tri (inpatient/outpatient) has no place in the contract: checked, then dropped.
    values.integer(body.hinh_thuc_dieu_tri, ("hinh_thuc_dieu_tri",), problems, minimum=1, maximum=9)
    signature = values.text(body.signature, ("signature",), problems, max_length=200_000)
    problems.raise_if_any()
    assert issued_at is not None and kind is not None
    payload: dict[str, Any] = {
        "code": code,
        "kind": kind,
        "facility_code": facility_code,
        "issued_at": vn_time(issued_at),
        "patient": the_patient,
        "diagnoses": diagnoses,
        "items": items,
    }
    if notes is not None:
        payload["notes"] = notes
    # 0 days is what HIS software sends when no follow-up visit is planned.
    if follow_up_days:
        payload["follow_up_date"] = (issued_at.date() + timedelta(days=follow_up_days)).isoformat()
    signed = body_without_signature(raw)
    return Submission(payload, jsonstrict.checksum(signed), signature, read.ignored, origins)


def is_dialect_body(payload: Mapping[str, Any]) -> bool:
    """Whether a signed payload is a gui-don-thuoc body (the contract's payload and a FHIR Bundle
    refuse unknown fields, so only the dialect's carries `loai_don_thuoc`, which it requires)."""
    return "loai_don_thuoc" in payload


def signed_facts(raw: Mapping[str, Any]) -> SignedFacts:
    """What a stored body names of its record, read as `to_payload` read it; raise MappingError.

    The body names no facility: `to_payload` makes the code start with the signed-in facility's,
    so the code's first five characters are the facility the record was stored for.
    """
    problems = Problems()
    body = reader.read(GuiDonThuoc, raw, Problems()).body
    kind = _kind(body.loai_don_thuoc, problems)
    code = _code(body.ma_don_thuoc, kind, None, problems)
    problems.raise_if_any()
    assert kind is not None and code is not None
    return SignedFacts(facility_code=code[:5], kind=kind, code=code)


def _kind(raw: Any, problems: Problems) -> str | None:
    loc = ("loai_don_thuoc",)
    value = values.text(raw, loc, problems, required=True, max_length=10)
    if value is None:
        return None
    kind = value.lower()  # real systems write the letter in either case
    if kind not in KINDS:
        problems.add(
            loc,
            f"loại đơn thuốc phải là c (thông thường), n (gây nghiện), h (hướng thần, tiền chất), "
            f"y (y học cổ truyền) hoặc t (thuốc thang), nhận được {value!r}",
            INVALID,
        )
        return None
    return kind


def _code(raw: Any, kind: str | None, facility_code: str | None, problems: Problems) -> str | None:
    """The canonical code; when `facility_code` is given (the signed-in facility's), it must start it."""
    loc = ("ma_don_thuoc",)
    value = values.text(raw, loc, problems, required=True, max_length=40)
    if value is None:
        return None
    code = canonical_code(value)
    if code is None:
        problems.add(
            loc,
            "mã đơn thuốc gồm 14 ký tự: 5 ký tự mã cơ sở, 7 ký tự chữ hoặc số, dấu '-' và loại đơn "
            f"(ví dụ {facility_code or '25366'}VMA336R-c), nhận được {value!r}",
            FORMAT,
        )
        return None
    if facility_code is not None and code[:5] != facility_code:
        problems.add(loc, f"mã đơn thuốc phải bắt đầu bằng mã cơ sở {facility_code}", MISMATCH)
    if kind is not None and code[-1] != kind:
        problems.add(loc, f"mã đơn thuốc phải kết thúc bằng '-{kind}', đúng loại đơn thuốc", MISMATCH)
    return code


def compose_notes(advice: str | None, caution: str | None) -> str | None:
    """Join loi_dan and luu_y into the contract's `notes`."""
    parts = [advice] if advice else []
    if caution:
        parts.append(NOTE_MARK + caution)
    return "\n".join(parts) or None


def split_notes(notes: str | None) -> tuple[str, str]:
    """Split `notes` back into (loi_dan, luu_y); the inverse of compose_notes."""
    if not notes:
        return "", ""
    if notes.startswith(NOTE_MARK):
        return "", notes[len(NOTE_MARK) :]
    advice, mark, caution = notes.rpartition("\n" + NOTE_MARK)
    return (advice, caution) if mark else (notes, "")


def _notes(body: GuiDonThuoc, problems: Problems) -> str | None:
    advice = values.text(body.loi_dan, ("loi_dan",), problems, max_length=MAX_NOTES)
    caution = values.text(body.luu_y, ("luu_y",), problems, max_length=MAX_NOTES)
    notes = compose_notes(advice, caution)
    if notes is not None and len(notes) > MAX_NOTES:
        problems.add(("loi_dan",), f"lời dặn và lưu ý cộng lại dài quá {MAX_NOTES} ký tự", INVALID)
        return None
    return notes
