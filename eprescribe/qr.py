"""QR rendering of a prescription's QR text (blocking: call through a thread)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M


def _make(text: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=6, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    return qr


def png(text: str) -> bytes:
    buffer = io.BytesIO()
    _make(text).make_image().save(buffer)
    return buffer.getvalue()


def svg(text: str) -> bytes:
    buffer = io.BytesIO()
    _make(text).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def terminal(text: str) -> str:
    buffer = io.StringIO()
    _make(text).print_ascii(out=buffer, invert=True)
    return buffer.getvalue()
