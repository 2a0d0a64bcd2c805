"""Prescription codes: `FFFFF` facility + 7 random `[0-9A-Z]` + `-` + kind letter."""

from __future__ import annotations

import re
import secrets
import string

ALPHABET = string.digits + string.ascii_uppercase
PRESCRIPTION_CODE = re.compile(r"^([0-9A-Z]{5})([0-9A-Z]{7})-([cnhyt])$")
KINDS = "cnhyt"


def canonical(code: str) -> str | None:
    """Return the canonical form (upper-case body, lower-case kind) or None if malformed."""
    code = code.strip()
    body, sep, kind = code.rpartition("-")
    if not sep:
        return None
    candidate = f"{body.upper()}-{kind.lower()}"
    return candidate if PRESCRIPTION_CODE.match(candidate) else None


def from_scanned_text(text: str) -> str | None:
    """Accept a typed code or a scanned QR text (`CODE.<jws>`) and return the canonical code."""
    text = text.strip()
    head = text.split(".", 1)[0]
    return canonical(head)


def generate(facility_code: str, kind: str) -> str:
    """Draw a fresh code from the operating system's cryptographic random source."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(7))
    return f"{facility_code}{body}-{kind}"


def facility_of(code: str) -> str:
    return code[:5]


def kind_of(code: str) -> str:
    return code[-1]
