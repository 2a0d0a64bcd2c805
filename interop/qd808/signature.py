"""The dialect's `signature`: a compact JWS (ES256, `kid` = prescriber) of the body without it.

The check refuses anything but ES256 before touching the key, refuses a payload that strict JSON
refuses, and refuses a body that differs as JSON from what was signed (key order and white
space may differ; nothing else may).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from interop.qd808.mapping import body_without_signature
from kit.jsonstrict import StrictJsonError, parse_strict, same_json

ALGORITHMS = ["ES256"]


class SignatureRejected(ValueError):
    """The signature does not prove that the prescriber signed this very body."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message  # Vietnamese, for the dialect's answer
        # A stable code: missing, malformed, algorithm, kid, key, invalid, payload or changed.
        self.reason = reason


def _b64(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SignatureRejected(
            "Chữ ký số không đúng dạng JWS thu gọn (header.payload.signature)", "malformed"
        ) from exc


def read_header(compact: str) -> dict[str, Any]:
    """Read the protected header without verifying anything."""
    parts = compact.split(".")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise SignatureRejected(
            "Chữ ký số không đúng dạng JWS thu gọn (header.payload.signature)", "malformed"
        )
    try:
        header = parse_strict(_b64(parts[0]))
    except StrictJsonError as exc:
        raise SignatureRejected(
            "Phần đầu (header) của chữ ký số không phải JSON hợp lệ", "malformed"
        ) from exc
    if not isinstance(header, dict):
        raise SignatureRejected("Phần đầu (header) của chữ ký số phải là một đối tượng JSON", "malformed")
    return header


def _key(public_jwk: Mapping[str, Any]) -> ECKey:
    if "d" in public_jwk:
        raise SignatureRejected("Khóa đăng ký là khóa bí mật; chỉ dùng khóa công khai", "key")
    if public_jwk.get("kty") != "EC" or public_jwk.get("crv") != "P-256":
        raise SignatureRejected("Khóa công khai của bác sĩ phải là khóa EC P-256", "key")
    try:
        return ECKey.import_key({name: public_jwk[name] for name in ("kty", "crv", "x", "y")})
    except (JoseError, KeyError, ValueError, TypeError) as exc:
        raise SignatureRejected("Khóa công khai của bác sĩ không hợp lệ", "key") from exc


def check_signed_body(
    body: Mapping[str, Any], compact: str, public_jwk: Mapping[str, Any], *, expected_kid: str | None = None
) -> None:
    """Raise SignatureRejected unless `compact` is the prescriber's ES256 signature of `body`.

    `body` is the submitted JSON object (parse it with `jsonstrict.parse_strict`, so duplicate
    keys cannot show one thing to us and another to the signature); its `signature` is ignored.
    """
    if not isinstance(compact, str) or not compact.strip():
        raise SignatureRejected("Thiếu chữ ký số (signature) của bác sĩ", "missing")
    compact = compact.strip()
    header = read_header(compact)
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise SignatureRejected(
            f"Thuật toán ký {algorithm!r} không được chấp nhận; chỉ chấp nhận ES256", "algorithm"
        )
    if "crit" in header:
        raise SignatureRejected("Chữ ký số dùng phần mở rộng bắt buộc (crit) không được hỗ trợ", "malformed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureRejected("Phần đầu chữ ký số phải ghi mã bác sĩ ký (kid)", "kid")
    if expected_kid is not None and kid != expected_kid:
        raise SignatureRejected(f"Chữ ký số ghi bác sĩ {kid!r}, không phải bác sĩ đã đăng nhập", "kid")
    key = _key(public_jwk)
    try:
        verified = jws.deserialize_compact(compact, key, algorithms=ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise SignatureRejected(
            "Chữ ký số không khớp với khóa công khai đã đăng ký của bác sĩ", "invalid"
        ) from exc
    try:
        signed = parse_strict(verified.payload)
    except StrictJsonError as exc:
        raise SignatureRejected(f"Nội dung đã ký không phải JSON hợp lệ: {exc}", "payload") from exc
    if not isinstance(signed, dict):
        raise SignatureRejected("Nội dung đã ký phải là một đối tượng JSON", "payload")
    if not same_json(signed, body_without_signature(body)):
        raise SignatureRejected(
            "Nội dung đơn thuốc khác với nội dung bác sĩ đã ký (đã bị thay đổi sau khi ký)", "changed"
        )
