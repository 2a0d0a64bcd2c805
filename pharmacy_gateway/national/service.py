"""The national protocol's pharmacy door (QĐ 808) on the gateway's own rules; no HTTP, no commit.

A read is the gateway's lookup (throttled misses, the access log, nothing a pharmacy may not
see); a sale is the gateway's dispense (the same ledger move, substitution checks, controlled
licence, idempotency), so both doors move one record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.national import answers
from eprescribe.national.exceptions import DialectRefused
from eprescribe.national.problems import INVALID, MISMATCH, Loc, MappingError, Problem
from eprescribe.national.schemas import MSG_SALE_RECORDED
from eprescribe.national.service import read_json
from eprescribe.national.stored import StoredPrescription
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.schemas import PrescriptionRecord
from eprescribe.registry.schemas import PharmacyRecord
from kit import throttle
from kit.errors import DomainError
from kit.runtime import Runtime
from kit.time import utcnow
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.dispensing.schemas import DispenseCreate
from pharmacy_gateway.national import reverse
from pharmacy_gateway.national.sale import SaleReport, dispense_items, parse_sale
from pharmacy_gateway.national.stored import stored_from_record

# Contract dispense fields -> the sale report's fields.
_SALE_FIELDS = {"quantity": "so_luong_ban", "registration_no": "ma_thuoc", "line_no": "ma_thuoc_da_ke_don"}
# The dialect names no pharmacist: the outlet answers for the sale under its connection code.
PHARMACIST_LICENCE_PREFIX = "QĐ808:"


async def _stored(session: AsyncSession, found: PrescriptionRecord) -> StoredPrescription:
    numbers = [line.registration_no for line in found.lines if line.registration_no]
    products = await catalogue.products_by_registration(session, numbers)
    return stored_from_record(
        found,
        status=found.status_at(utcnow()),
        line_ids=await prescriptions.line_ids(session, found),
        brands={number: product.name for number, product in products.items()},
    )


async def read(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: PharmacyRecord,
    code_text: str,
    address: str,
    pace: throttle.Pace,
) -> dict[str, Any]:
    """`thong-tin-don-thuoc`: what the gateway shows a pharmacy, in the dialect's fields.

    As at the gateway: no identity numbers, no diagnoses, the birth year only, initials only for
    HIV/AIDS patients.
    """
    found = await dispensing.lookup_record(
        session, runtime, pharmacy=pharmacy, text=code_text, address=address, pace=pace
    )
    answer = reverse.read_answer(await _stored(session, found), include_diagnoses=False)
    answer["ngay_sinh_benh_nhan"] = str(found.patient.date_of_birth.year)
    return answer


def _sale_loc(report: SaleReport, loc: list[Any]) -> Loc:
    parts = loc[1:] if loc[:1] == ["body"] else loc
    if len(parts) >= 2 and parts[0] == "items" and isinstance(parts[1], int) and parts[1] < len(report.lines):
        field = _SALE_FIELDS.get(str(parts[2]), str(parts[2])) if len(parts) > 2 else None
        index = report.lines[parts[1]].index
        return ("thong_tin_thuoc", index, field) if field else ("thong_tin_thuoc", index)
    return tuple(str(p) for p in parts)


def _refused(report: SaleReport, exc: DomainError) -> DialectRefused:
    problems = [Problem(_sale_loc(report, e["loc"]), str(e["msg"]), INVALID) for e in exc.errors or []]
    if not problems:
        problems = [Problem(("ma_don_thuoc",), exc.detail, INVALID)]
    # Rule refusals (409, 422) are 422 in the dialect; 403 (controlled licence) and 404 stay.
    status = 422 if exc.status_code in (409, 422) else exc.status_code
    message = f"Không cập nhật được đơn thuốc {report.code}: {exc.detail}"
    return DialectRefused(
        status, answers.failure(message, problems), problem=exc.problem, headers=exc.headers
    )


async def sell(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: PharmacyRecord,
    raw_body: bytes,
    address: str,
    pace: throttle.Pace,
) -> dict[str, Any]:
    """`cap-nhat-don-thuoc`: one sale (so_luong_ban per line, partial allowed) through the gateway's dispense."""
    raw = read_json(raw_body)
    try:
        report = parse_sale(raw)
    except MappingError as exc:
        raise DialectRefused(422, answers.refused(exc), problem="invalid-content") from exc
    if report.outlet.code.strip().upper() != pharmacy.connection_code:
        message = f"Cơ sở {report.outlet.code} không phải cơ sở đã đăng nhập ({pharmacy.connection_code})"
        problem = Problem(("ma_dinh_danh_co_so_cung_ung_thuoc",), message, MISMATCH)
        raise DialectRefused(403, answers.failure(message, [problem]), problem="forbidden")
    found = await prescriptions.find(session, report.code)
    if found is None:
        # Counted and logged as the guess it may be, then 404 in the dialect's shape.
        await dispensing.lookup_record(
            session, runtime, pharmacy=pharmacy, text=report.code, address=address, pace=pace
        )
    assert found is not None
    stored = await _stored(session, found)
    try:
        items = dispense_items(report, stored)
    except MappingError as exc:
        raise DialectRefused(422, answers.refused(exc), problem="invalid-content") from exc
    body = DispenseCreate.model_validate(
        {
            "pharmacist": {
                "full_name": (report.outlet.name or pharmacy.name)[:200],
                "license_no": (PHARMACIST_LICENCE_PREFIX + pharmacy.connection_code)[:64],
            },
            "items": items,
        }
    )
    try:
        answer = await dispensing.dispense(
            session,
            runtime,
            pharmacy=pharmacy,
            code_text=report.code,
            body=body,
            # Only an invoice number tells a resent report from a second sale of the same amounts.
            idempotency_key=report.idempotency_key() if report.invoice_no else None,
            address=address,
            pace=pace,
        )
    except DomainError as exc:
        raise _refused(report, exc) from exc
    ids = {item.line_no: item.line_id for item in stored.items}
    return {
        "success": MSG_SALE_RECORDED,
        "ma_don_thuoc": found.code,
        "trang_thai": answer.body["prescription_status"],
        "thong_tin_thuoc": [
            {
                "ma_thuoc_da_ke_don": ids[line["line_no"]],
                "so_luong_da_ban": line["dispensed"],
                "so_luong_con_lai": line["remaining"],
            }
            for line in answer.body["items"]
        ],
    }
