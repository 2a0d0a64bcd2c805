"""The national protocol's prescriber door (QĐ 808) on the system's own rules; no HTTP, no commit.

Sign-ins go through the registry's throttled authentication; a gui-don-thuoc body is mapped to
the contract's payload and stored by the prescriptions service, so policy, replay refusal,
codes and the access log are the ones every prescription gets. One record, not a copy.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.national import answers, mapping
from eprescribe.national.catalogue import CatalogueEntry
from eprescribe.national.exceptions import DialectRefused
from eprescribe.national.problems import (
    FORMAT,
    INVALID,
    REQUIRED,
    MappingError,
    Problem,
    from_validation_error,
)
from eprescribe.national.schemas import BacSi, DangNhapBacSi, DangNhapCoSoKhamChuaBenh
from eprescribe.national.signature import SignatureRejected, check_signed_body
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.exceptions import PrescriptionConflict
from eprescribe.prescriptions.schemas import SignedForm
from eprescribe.registry import service as registry
from eprescribe.registry.exceptions import ClientNotFound, RegistryConflict
from eprescribe.registry.schemas import FacilityRecord, PrescriberRecord
from kit import throttle
from kit.errors import InvalidContent
from kit.jsonstrict import StrictJsonError, parse_strict
from kit.runtime import Runtime
from kit.security import ClientKind, Principal

MSG_PRESCRIBER_ADDED = "Thêm bác sĩ thành công"
MSG_PRESCRIBER_REMOVED = "Xóa bác sĩ thành công"
SIGNATURE_STATUS = 400  # as the contract answers an unverifiable signature
ModelT = TypeVar("ModelT", bound=BaseModel)
# A stored gui-don-thuoc JWS is verified again over the HIS's own body, read by the mapping.
SIGNED_FORM = SignedForm("QĐ 808", recognises=mapping.is_dialect_body, facts=mapping.signed_facts)


def read_json(raw: bytes) -> Any:
    """Parse a body strictly (no duplicate keys, no NaN); refuse in the dialect's shape."""
    try:
        return parse_strict(raw)
    except StrictJsonError as exc:
        problem = Problem((), f"nội dung gửi lên không phải JSON hợp lệ: {exc}", FORMAT)
        raise DialectRefused(
            400, answers.failure("Nội dung gửi lên không phải JSON hợp lệ", [problem])
        ) from exc


def read_body(model: type[ModelT], raw: bytes) -> ModelT:
    """Read a small strict body (credentials, a doctor's code) with every problem in Vietnamese."""
    try:
        return model.model_validate(read_json(raw))
    except ValidationError as exc:
        problems = from_validation_error(exc)
        raise DialectRefused(422, answers.sign_in_refused("Dữ liệu gửi lên không hợp lệ", problems)) from exc


def _token_answer(runtime: Runtime, principal: Principal) -> dict[str, Any]:
    issued = runtime.tokens.issue(principal)
    return {**answers.token(issued.access_token), "expires_in": issued.expires_in}


async def facility_sign_in(
    session: AsyncSession, runtime: Runtime, raw: bytes, *, address: str, pace: throttle.Pace
) -> dict[str, Any]:
    """`dang-nhap-co-so-kham-chua-benh`: the facility's code and secret, for the same token as OAuth's."""
    body = read_body(DangNhapCoSoKhamChuaBenh, raw)
    principal = await registry.authenticate(
        session,
        runtime,
        ClientKind.FACILITY,
        body.ma_lien_thong_co_so_kham_chua_benh,
        body.password.get_secret_value(),
        address=address,
        pace=pace,
    )
    return _token_answer(runtime, principal)


async def prescriber_sign_in(
    session: AsyncSession, runtime: Runtime, raw: bytes, *, address: str, pace: throttle.Pace
) -> dict[str, Any]:
    """`dang-nhap-bac-si`: the facility's code, the prescriber's id and the prescriber's password."""
    body = read_body(DangNhapBacSi, raw)
    principal = await registry.authenticate_prescriber(
        session,
        runtime,
        facility_code=body.ma_lien_thong_co_so_kham_chua_benh,
        prescriber_id=body.ma_lien_thong_bac_si,
        password=body.password.get_secret_value(),
        address=address,
        pace=pace,
    )
    return _token_answer(runtime, principal)


def _doctor_refused(exc: ClientNotFound | RegistryConflict) -> DialectRefused:
    problem = Problem(("ma_lien_thong_bac_si",), exc.detail, INVALID)
    return DialectRefused(422, answers.sign_in_refused(exc.detail, [problem]), problem=exc.problem)


async def add_prescriber(session: AsyncSession, facility: FacilityRecord, raw: bytes) -> dict[str, Any]:
    """`them-bac-si`: register a nationally registered prescriber at the token's facility."""
    body = read_body(BacSi, raw)
    try:
        await registry.add_prescriber_at(session, facility.facility_code, body.ma_lien_thong_bac_si)
    except (ClientNotFound, RegistryConflict) as exc:
        raise _doctor_refused(exc) from exc
    return {"success": MSG_PRESCRIBER_ADDED, "ma_lien_thong_bac_si": body.ma_lien_thong_bac_si.upper()}


async def remove_prescriber(session: AsyncSession, facility: FacilityRecord, raw: bytes) -> dict[str, Any]:
    """`xoa-bac-si`: the prescriber no longer prescribes for the token's facility."""
    body = read_body(BacSi, raw)
    try:
        await registry.remove_prescriber_at(session, facility.facility_code, body.ma_lien_thong_bac_si)
    except ClientNotFound as exc:
        raise _doctor_refused(exc) from exc
    return {"success": MSG_PRESCRIBER_REMOVED, "ma_lien_thong_bac_si": body.ma_lien_thong_bac_si.upper()}


async def _resolver(session: AsyncSession, raw: Any) -> dict[str, CatalogueEntry]:
    numbers = mapping.registration_numbers(raw) if isinstance(raw, dict) else []
    products = await catalogue.products_by_registration(session, numbers)
    return {
        number: CatalogueEntry(p.registration_no, p.active_ingredient, p.strength, p.dosage_form, p.unit)
        for number, p in products.items()
    }


def _check_signature(
    runtime: Runtime, raw: dict[str, Any], submission: mapping.Submission, prescriber: PrescriberRecord
) -> str | None:
    """The body's JWS, verified; None for an unsigned body when the setting admits those."""
    if submission.signature is None:
        if runtime.settings.national_accept_unsigned:
            return None
        message = "Thiếu chữ ký số (signature) của bác sĩ: đơn thuốc phải được ký (JWS ES256)"
        problem = Problem(("signature",), message, REQUIRED)
        raise DialectRefused(
            SIGNATURE_STATUS, answers.failure(message, [problem]), problem="invalid-signature"
        )
    try:
        check_signed_body(
            raw, submission.signature, prescriber.public_jwk, expected_kid=prescriber.prescriber_id
        )
    except SignatureRejected as exc:
        problem = Problem(("signature",), exc.message, INVALID)
        raise DialectRefused(
            SIGNATURE_STATUS, answers.failure(exc.message, [problem]), problem="invalid-signature"
        ) from exc
    return submission.signature.strip()


async def submit(
    session: AsyncSession,
    runtime: Runtime,
    *,
    facility: FacilityRecord,
    prescriber: PrescriberRecord,
    raw_body: bytes,
    idempotency_key: str | None,
    base_url: str,
) -> dict[str, Any]:
    """`gui-don-thuoc`: map, verify the signature over the body as sent, and store through every rule."""
    raw = read_json(raw_body)
    found = await _resolver(session, raw)
    try:
        submission = mapping.to_payload(raw, facility_code=facility.facility_code, resolve=found.get)
    except MappingError as exc:
        raise DialectRefused(422, answers.refused(exc), problem="invalid-content") from exc
    assert isinstance(raw, dict)
    compact = _check_signature(runtime, raw, submission, prescriber)
    try:
        answer = await prescriptions.submit_mapped(
            session,
            runtime,
            facility=facility,
            prescriber_id=prescriber.prescriber_id,
            payload=submission.payload,
            compact_jws=compact,
            idempotency_key=idempotency_key,
            base_url=base_url,
        )
    except InvalidContent as exc:
        problems = [
            Problem(answers.dialect_loc(submission, e["loc"]), str(e["msg"]), INVALID)
            for e in exc.errors or []
        ]
        count = len(problems)
        message = f"Đơn thuốc không đạt quy định: có {count} lỗi, xem danh_sach_cac_loi"
        raise DialectRefused(422, answers.failure(message, problems), problem=exc.problem) from exc
    except PrescriptionConflict as exc:
        code = submission.payload.get("code")
        # A code in use, or the very same body sent again: both are "mã đơn thuốc đã được sử dụng".
        body = answers.code_in_use(code) if code else answers.failure(exc.detail, [Problem((), exc.detail)])
        raise DialectRefused(422, body, problem=exc.problem) from exc
    return answers.submitted(submission, str(answer.body["code"]))
