"""Diagnoses, days of supply and drug lines of a gui-don-thuoc body."""

from __future__ import annotations

import re
from typing import Any

from eprescribe.national import values
from eprescribe.national.catalogue import Resolver
from eprescribe.national.kinds import TRADITIONAL_KINDS
from eprescribe.national.problems import FORMAT, INVALID, MISMATCH, REQUIRED, UNKNOWN, Loc, Problems
from eprescribe.national.schemas import ChanDoan, DotDungThuoc, ThuocKeDon
from kit.text import match_key

MAX_DIAGNOSES = 20
MAX_ITEMS = 50
MAX_DAYS = 366
_ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
_ICD10_WITHOUT_DOT = re.compile(r"^([A-Z][0-9]{2})([0-9A-Z]{1,4})$")
_CODE_SEPARATORS = re.compile(r"[;,]")


def icd10(raw: str) -> str | None:
    """Normalise one ICD-10 code (`j069` -> `J06.9`), or None when it is not one."""
    code = raw.strip().upper().replace(" ", "")
    # Many HIS store codes without the dot; inserting it after the category is unambiguous.
    bare = _ICD10_WITHOUT_DOT.match(code)
    if bare:
        code = f"{bare.group(1)}.{bare.group(2)}"
    return code if _ICD10.match(code) else None


def diagnoses(entries: list[ChanDoan], problems: Problems) -> tuple[list[dict[str, str]], dict[int, Loc]]:
    """Map chan_doan, splitting `J06.9;K29.7`; return the diagnoses and where each came from."""
    if not entries:
        problems.add(("chan_doan",), "cần ít nhất một chẩn đoán (mã ICD-10 và tên)", REQUIRED)
    found: list[dict[str, str]] = []
    origins: dict[int, Loc] = {}
    for index, entry in enumerate(entries):
        loc: Loc = ("chan_doan", index)
        codes_text = values.text(
            entry.ma_chan_doan, (*loc, "ma_chan_doan"), problems, required=True, max_length=200
        )
        name = values.text(entry.ten_chan_doan, (*loc, "ten_chan_doan"), problems, max_length=2000)
        conclusion = values.text(entry.ket_luan, (*loc, "ket_luan"), problems, max_length=2000)
        label = name or conclusion
        if label is None:
            problems.add((*loc, "ten_chan_doan"), "cần tên chẩn đoán (ten_chan_doan hoặc ket_luan)", REQUIRED)
        if codes_text is None:
            continue
        codes = [part for part in (p.strip() for p in _CODE_SEPARATORS.split(codes_text)) if part]
        # "Viêm họng cấp;Viêm dạ dày" pairs with "J02.9;K29.7" when the counts agree.
        names = name.split(";") if name and len(codes) > 1 and len(name.split(";")) == len(codes) else None
        for position, raw_code in enumerate(codes):
            code = icd10(raw_code)
            if code is None:
                problems.add(
                    (*loc, "ma_chan_doan"), f"{raw_code!r} không phải mã ICD-10 (ví dụ J06.9)", FORMAT
                )
                continue
            text = (names[position].strip() if names else label) or ""
            if names and not text:
                problems.add((*loc, "ten_chan_doan"), f"thiếu tên chẩn đoán cho mã {code}", REQUIRED)
            elif len(text) > 500:
                problems.add((*loc, "ten_chan_doan"), "tên chẩn đoán dài quá 500 ký tự", INVALID)
            elif text and all(d["icd10"] != code for d in found):
                origins[len(found)] = (*loc, "ma_chan_doan")
                found.append({"icd10": code, "text": text})
    if len(found) > MAX_DIAGNOSES:
        problems.add(
            ("chan_doan",), f"nhiều nhất {MAX_DIAGNOSES} mã chẩn đoán, nhận được {len(found)}", INVALID
        )
    return found, origins


def days_of_supply(dot: DotDungThuoc | None, kind: str | None, problems: Problems) -> int | None:
    """Count the days of supply of the round: its dates inclusive, else its decoction packs."""
    loc: Loc = ("dot_dung_thuoc",)
    if dot is None:
        if problems.has(loc):
            return None  # present but refused by the reader, already reported
        problems.add(
            loc,
            "cần từ ngày và đến ngày (hoặc số thang thuốc với đơn y học cổ truyền) để tính số ngày dùng thuốc",
            REQUIRED,
        )
        return None
    # The round number has no place in the contract: read so a wrong value is reported, then dropped.
    values.integer(dot.dot, (*loc, "dot"), problems, minimum=1, maximum=99)
    start = values.dmy_date(dot.tu_ngay, (*loc, "tu_ngay"), problems)
    end = values.dmy_date(dot.den_ngay, (*loc, "den_ngay"), problems)
    packs = values.integer(
        dot.so_thang_thuoc, (*loc, "so_thang_thuoc"), problems, minimum=1, maximum=MAX_DAYS
    )
    has_start, has_end = not values.is_absent(dot.tu_ngay), not values.is_absent(dot.den_ngay)
    if has_start != has_end:
        missing = "den_ngay" if has_start else "tu_ngay"
        problems.add((*loc, missing), "cần cả từ ngày và đến ngày", REQUIRED)
        return None
    if start is not None and end is not None:
        if end < start:
            problems.add((*loc, "den_ngay"), "đến ngày phải bằng hoặc sau từ ngày", INVALID)
            return None
        days = (end - start).days + 1  # "từ 01/11 đến 07/11" is seven days: both ends count
        if days > MAX_DAYS:
            problems.add(
                (*loc, "den_ngay"), f"một đợt dùng thuốc dài nhất {MAX_DAYS} ngày, nhận được {days}", INVALID
            )
            return None
        return days
    if has_start:
        return None  # a date was wrong and is already reported
    if packs is not None:
        if kind is not None and kind not in TRADITIONAL_KINDS:
            problems.add(
                (*loc, "so_thang_thuoc"),
                "số thang thuốc chỉ dùng cho đơn y học cổ truyền (y) và thuốc thang (t); đơn này cần từ ngày và đến ngày",
                INVALID,
            )
            return None
        return packs  # one decoction pack a day
    if values.is_absent(dot.so_thang_thuoc):
        problems.add(
            loc,
            "cần từ ngày và đến ngày (hoặc số thang thuốc với đơn y học cổ truyền) để tính số ngày dùng thuốc",
            REQUIRED,
        )
    return None


def items(
    lines: list[ThuocKeDon], days: int | None, resolve: Resolver, problems: Problems
) -> list[dict[str, Any]]:
    """Map the drug lines through the catalogue: ma_thuoc decides ingredient, strength and form."""
    loc: Loc = ("thong_tin_don_thuoc",)
    if not lines:
        problems.add(loc, "cần ít nhất một thuốc", REQUIRED)
    if len(lines) > MAX_ITEMS:
        problems.add(loc, f"nhiều nhất {MAX_ITEMS} thuốc mỗi đơn, nhận được {len(lines)}", INVALID)
    found: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        here: Loc = (*loc, index)
        number = values.text(line.ma_thuoc, (*here, "ma_thuoc"), problems, required=True, max_length=64)
        quantity = values.integer(
            line.so_luong, (*here, "so_luong"), problems, required=True, minimum=1, maximum=100_000
        )
        how = values.text(line.cach_dung, (*here, "cach_dung"), problems, required=True, max_length=1000)
        unit = values.text(line.don_vi_tinh, (*here, "don_vi_tinh"), problems, max_length=32)
        # Names are informative only (the catalogue entry decides); still read for their types.
        values.text(line.ten_thuoc, (*here, "ten_thuoc"), problems, max_length=500)
        values.text(line.biet_duoc, (*here, "biet_duoc"), problems, max_length=500)
        entry = resolve(number) if number else None
        if number and entry is None:
            problems.add(
                (*here, "ma_thuoc"),
                f"không có thuốc số đăng ký {number} trong danh mục thuốc quốc gia",
                UNKNOWN,
            )
        if entry is not None and unit is not None and match_key(unit) != match_key(entry.unit):
            problems.add(
                (*here, "don_vi_tinh"),
                f"đơn vị tính {unit!r} khác đơn vị của thuốc trong danh mục ({entry.unit!r}); số lượng phải tính theo {entry.unit!r}",
                MISMATCH,
            )
            continue
        if entry is None or quantity is None or how is None or days is None:
            continue
        found.append(
            {
                "active_ingredient": entry.active_ingredient,
                "strength": entry.strength,
                "dosage_form": entry.dosage_form,
                "registration_no": entry.registration_no,
                "quantity": quantity,
                "unit": entry.unit,
                "instructions": how,
                "days_supply": days,
            }
        )
    return found
