"""The sale report of `cap-nhat-don-thuoc`: what was sold now, by whom, on which invoice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eprescribe.prescriptions import codes
from interop.problems import FORMAT, INVALID, MISMATCH, REQUIRED, UNKNOWN, Loc, Problems
from interop.qd808 import reader, values
from interop.qd808.schemas import CapNhatDonThuoc
from interop.stored import StoredPrescription
from kit import jsonstrict


@dataclass(frozen=True)
class SoldLine:
    line_id: int  # ma_thuoc_da_ke_don: the `id` the read answer gave the line
    registration_no: str  # ma_thuoc: the product actually sold (a substitute is allowed)
    quantity: int  # so_luong_ban: sold now, not in total
    index: int  # position in thong_tin_thuoc, to point problems at it


@dataclass(frozen=True)
class Outlet:
    code: str
    name: str | None
    phone: str | None
    address: str | None


@dataclass(frozen=True)
class SaleReport:
    code: str
    lines: tuple[SoldLine, ...]
    outlet: Outlet
    invoice_no: str | None
    ignored_fields: tuple[str, ...] = ()

    def idempotency_key(self) -> str:
        """Derive a key that makes a resent report (same invoice, same lines) count once."""
        lines = [[line.line_id, line.registration_no, line.quantity] for line in self.lines]
        return jsonstrict.checksum([self.code, self.outlet.code, self.invoice_no, lines])


def parse_sale(raw: Any) -> SaleReport:
    """Read a sale report; lines with so_luong_ban 0 (shown but not sold) are skipped."""
    problems = Problems()
    read = reader.read(CapNhatDonThuoc, raw, problems)
    body = read.body
    code_text = values.text(body.ma_don_thuoc, ("ma_don_thuoc",), problems, required=True, max_length=40)
    code = codes.canonical(code_text) if code_text else None
    if code_text and code is None:
        problems.add(
            ("ma_don_thuoc",), f"{code_text!r} không phải mã đơn thuốc (ví dụ 25366VMA336R-c)", FORMAT
        )
    outlet_code = values.text(
        body.ma_dinh_danh_co_so_cung_ung_thuoc,
        ("ma_dinh_danh_co_so_cung_ung_thuoc",),
        problems,
        required=True,
        max_length=64,
    )
    outlet = Outlet(
        code=outlet_code or "",
        name=values.text(body.ten_co_so_cung_ung_thuoc, ("ten_co_so_cung_ung_thuoc",), problems),
        phone=values.phone(
            body.so_dien_thoai_co_so_cung_ung_thuoc, ("so_dien_thoai_co_so_cung_ung_thuoc",), problems
        ),
        address=values.text(
            body.dia_chi_co_so_cung_ung_thuoc, ("dia_chi_co_so_cung_ung_thuoc",), problems, max_length=500
        ),
    )
    invoice_no = values.text(body.ma_hoa_don, ("ma_hoa_don",), problems, max_length=64)
    lines: list[SoldLine] = []
    for index, line in enumerate(body.thong_tin_thuoc):
        loc: Loc = ("thong_tin_thuoc", index)
        sold = values.integer(
            line.so_luong_ban, (*loc, "so_luong_ban"), problems, required=True, minimum=0, maximum=100_000
        )
        if not sold:
            continue
        line_id = values.integer(
            line.ma_thuoc_da_ke_don, (*loc, "ma_thuoc_da_ke_don"), problems, required=True, minimum=1
        )
        number = values.text(line.ma_thuoc, (*loc, "ma_thuoc"), problems, required=True, max_length=64)
        if line_id is not None and number is not None:
            lines.append(SoldLine(line_id, number, sold, index))
    if not body.thong_tin_thuoc:
        problems.add(("thong_tin_thuoc",), "cần ít nhất một thuốc đã bán", REQUIRED)
    elif not lines and not problems:
        problems.add(
            ("thong_tin_thuoc",), "không có thuốc nào có số lượng bán (so_luong_ban) lớn hơn 0", INVALID
        )
    problems.raise_if_any()
    assert code is not None
    return SaleReport(code, tuple(lines), outlet, invoice_no, read.ignored)


def dispense_items(report: SaleReport, rx: StoredPrescription) -> list[dict[str, Any]]:
    """Turn the report into the contract's dispense `items` (line_no, registration_no, quantity)."""
    problems = Problems()
    if codes.canonical(rx.code) != report.code:
        problems.add(
            ("ma_don_thuoc",), f"báo cáo bán của đơn {report.code} không thuộc đơn {rx.code}", MISMATCH
        )
    by_id = {item.line_id: item for item in rx.items}
    found: list[dict[str, Any]] = []
    for line in report.lines:
        item = by_id.get(line.line_id)
        if item is None:
            problems.add(
                ("thong_tin_thuoc", line.index, "ma_thuoc_da_ke_don"),
                f"đơn {rx.code} không có dòng thuốc id {line.line_id}; dùng `id` của dòng trong thong-tin-don-thuoc",
                UNKNOWN,
            )
            continue
        found.append(
            {"line_no": item.line_no, "registration_no": line.registration_no, "quantity": line.quantity}
        )
    problems.raise_if_any()
    return found
