"""The dialect's signature: refused when the body changed after signing or the algorithm is wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from interop.qd808.signature import SignatureRejected, check_signed_body
from kit.jsonstrict import parse_strict
from tests.interop.data import his_body

KEY = ECKey.generate_key("P-256")
PUBLIC = KEY.as_dict(private=False)
KID = "BS7K2M9Q4X"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload: bytes, header: dict[str, Any] | None = None, key: ECKey = KEY) -> str:
    return jws.serialize_compact(header or {"alg": "ES256", "kid": KID}, payload, key, algorithms=["ES256"])


def signed_body(**changes: Any) -> dict[str, Any]:
    """Sign the body without `signature` the way a HIS would, then put the JWS in `signature`."""
    body = his_body(**changes)
    del body["signature"]
    compact = sign(json.dumps(body, ensure_ascii=False).encode())
    return {**body, "signature": compact}


def check(body: dict[str, Any], compact: str | None = None, jwk: dict[str, Any] | None = None) -> None:
    check_signed_body(
        body, body["signature"] if compact is None else compact, jwk or PUBLIC, expected_kid=KID
    )


def reason(body: dict[str, Any], compact: str | None = None, jwk: dict[str, Any] | None = None) -> str:
    with pytest.raises(SignatureRejected) as caught:
        check(body, compact, jwk)
    return caught.value.reason


def test_a_signed_body_verifies() -> None:
    check(signed_body())


def test_key_order_and_white_space_do_not_matter() -> None:
    body = signed_body()
    received = json.dumps(dict(reversed(list(body.items()))), ensure_ascii=False, indent=4)
    check(parse_strict(received.encode()))


def test_a_body_changed_after_signing_is_refused() -> None:
    body = signed_body()
    body["thong_tin_don_thuoc"][0]["so_luong"] = "200"
    assert reason(body) == "changed"


def test_a_number_changed_into_a_string_is_a_change() -> None:
    body = signed_body(ngay_tai_kham=7)
    body["ngay_tai_kham"] = "7"
    assert reason(body) == "changed"


def test_an_added_field_is_a_change() -> None:
    body = signed_body()
    body["ghi_chu"] = "thêm sau khi ký"
    assert reason(body) == "changed"


def test_alg_none_is_refused() -> None:
    body = signed_body()
    payload = body["signature"].split(".")[1]
    unsigned = f"{b64(json.dumps({'alg': 'none', 'kid': KID}).encode())}.{payload}."
    assert reason(body, unsigned) == "malformed"  # no signature part at all
    forged = f"{b64(json.dumps({'alg': 'none', 'kid': KID}).encode())}.{payload}.{b64(b'x')}"
    assert reason(body, forged) == "algorithm"


def test_hs256_with_the_public_key_as_secret_is_refused() -> None:
    body = signed_body()
    header = b64(json.dumps({"alg": "HS256", "kid": KID}).encode())
    payload = body["signature"].split(".")[1]
    secret = json.dumps(PUBLIC).encode()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert reason(body, f"{header}.{payload}.{b64(mac)}") == "algorithm"


def test_another_key_does_not_verify() -> None:
    body = signed_body()
    other = ECKey.generate_key("P-256").as_dict(private=False)
    assert reason(body, jwk=other) == "invalid"


def test_a_signature_of_another_prescriber_is_refused() -> None:
    body = signed_body()
    compact = sign(
        json.dumps({k: v for k, v in body.items() if k != "signature"}).encode(),
        {"alg": "ES256", "kid": "BS0000000"},
    )
    assert reason(body, compact) == "kid"


def test_duplicate_keys_in_the_signed_payload_are_refused() -> None:
    body = signed_body()
    text = json.dumps({k: v for k, v in body.items() if k != "signature"}, ensure_ascii=False)
    doubled = text[:-1] + ', "loai_don_thuoc": "n"}'
    assert reason(body, sign(doubled.encode())) == "payload"


def test_a_payload_that_is_not_utf8_is_refused() -> None:
    body = signed_body()
    latin = json.dumps({"ho_ten_benh_nhan": "Nguyễn"}, ensure_ascii=False).encode("utf-16")
    assert reason(body, sign(latin)) == "payload"


def test_an_empty_signature_is_missing() -> None:
    body = his_body()  # HIS software sends "" today
    assert reason(body) == "missing"


def test_a_private_key_or_another_curve_is_refused() -> None:
    body = signed_body()
    assert reason(body, jwk=KEY.as_dict(private=True)) == "key"
    assert reason(body, jwk={**PUBLIC, "crv": "P-384"}) == "key"


def test_critical_headers_are_refused() -> None:
    body = signed_body()
    _, payload, signature = body["signature"].split(".")
    header = b64(json.dumps({"alg": "ES256", "kid": KID, "crit": ["b64"], "b64": False}).encode())
    assert reason(body, f"{header}.{payload}.{signature}") == "malformed"


def test_messages_are_vietnamese() -> None:
    body = signed_body()
    body["loi_dan"] = "đã sửa"
    with pytest.raises(SignatureRejected) as caught:
        check(body)
    assert (
        caught.value.message
        == "Nội dung đơn thuốc khác với nội dung bác sĩ đã ký (đã bị thay đổi sau khi ký)"
    )
