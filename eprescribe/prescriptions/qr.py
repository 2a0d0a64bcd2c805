"""The QR code of a prescription: what it says (`CODE.<national JWS>`) and how it is drawn."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import qrcode
import qrcode.image.svg
from joserfc.errors import JoseError
from qrcode.constants import ERROR_CORRECT_M

from kit.security import KeyRing


class PrescribedLine(Protocol):
    @property
    def line_no(self) -> int: ...
    @property
    def active_ingredient(self) -> str: ...
    @property
    def strength(self) -> str: ...
    @property
    def dosage_form(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit(self) -> str: ...


def lines_digest(items: Sequence[PrescribedLine]) -> str:
    """A digest of what was prescribed, line by line, that the QR signs."""
    canonical = [
        [i.line_no, i.active_ingredient, i.strength, i.dosage_form, i.quantity, i.unit] for i in items
    ]
    raw = json.dumps(canonical, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()


def claims(code: str, kind: str, facility_code: str, valid_until: datetime, digest: str) -> dict[str, Any]:
    """What the QR's JWS signs: code, kind, facility, valid_until and a digest of the lines."""
    return {"c": code, "k": kind, "f": facility_code, "v": int(valid_until.timestamp()), "d": digest}


def text(keyring: KeyRing, code: str, signed: dict[str, Any]) -> str:
    """`CODE.<JWS>`: the national key signs what a pharmacy needs to trust a paper copy offline."""
    return f"{code}.{keyring.sign_compact(signed)}"


def matches(keyring: KeyRing, scanned: str, expected: dict[str, Any]) -> bool:
    """Whether a scanned QR carries the national signature over exactly the expected claims."""
    _, dot, compact = scanned.strip().partition(".")
    if not dot:
        return False
    try:
        found = keyring.verify_compact(compact)
    except (JoseError, ValueError, TypeError, KeyError):
        return False
    return found == expected


# ---- drawing (blocking: call through a thread) -----------------------------------------------


def _make(content: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=6, border=4)
    qr.add_data(content)
    qr.make(fit=True)
    return qr


def png(content: str) -> bytes:
    buffer = io.BytesIO()
    _make(content).make_image().save(buffer)
    return buffer.getvalue()


def svg(content: str) -> bytes:
    buffer = io.BytesIO()
    _make(content).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def terminal(content: str) -> str:
    buffer = io.StringIO()
    _make(content).print_ascii(out=buffer, invert=True)
    return buffer.getvalue()
