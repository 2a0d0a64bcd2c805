"""The prescriber's signature: a compact JWS, ES256 only, verified with the registered key."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions.exceptions import SignatureRejected
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PrescriberRecord
from kit.errors import InvalidContent, field_error
from kit.jsonstrict import StrictJsonError, parse_strict
from kit.security import SIGNING_ALGORITHMS, peek_header

JWS_LOC = ["body", "jws"]


@dataclass(frozen=True)
class SignedPayload:
    """A verified JWS: who signed it, what they signed, and the digest that makes it unique."""

    prescriber: PrescriberRecord
    payload: dict[str, Any]
    # The payload exactly as signed (UTF-8 JSON), for strict validation.
    raw: bytes
    digest: str
    # Whether the signer is registered at the facility submitting it.
    works_here: bool


def _refuse(detail: str, where: list[str], msg: str) -> SignatureRejected:
    return SignatureRejected(detail, errors=[field_error([*JWS_LOC, *where], msg)])


def _header(compact: str) -> dict[str, Any]:
    """Read and screen the header before any key is looked up: only ES256, no `crit`, a `kid`."""
    try:
        header = peek_header(compact)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _refuse("The JWS header cannot be read", [], "malformed JWS header") from exc
    if len(compact.split(".")) != 3:
        raise _refuse("The JWS must be in compact form: header.payload.signature", [], "not a compact JWS")
    if header.get("alg") not in SIGNING_ALGORITHMS:
        raise _refuse(
            f"Algorithm {header.get('alg')!r} is not accepted; prescriptions are signed with ES256",
            ["header", "alg"],
            "only ES256 is accepted",
        )
    if header.get("crit"):
        raise _refuse("Critical JWS header extensions are not supported", ["header", "crit"], "unsupported")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("The JWS header must name the prescriber in `kid`", ["header", "kid"], "missing")
    return header


@functools.lru_cache(maxsize=4096)
def _public_key(crv: str, x: str, y: str) -> ECKey:
    """A registered key, imported once per process: keyed by the key itself, so a new key is a new entry."""
    return ECKey.import_key({"kty": "EC", "crv": crv, "x": x, "y": y})


def _registered_key(jwk: dict[str, Any]) -> ECKey:
    return _public_key(str(jwk.get("crv", "")), str(jwk.get("x", "")), str(jwk.get("y", "")))


def payload_digest(compact: str) -> str:
    """SHA-256 of the signed payload part: the same signed prescription is accepted once."""
    return hashlib.sha256(compact.split(".")[1].encode()).hexdigest()


async def verify(session: AsyncSession, compact: str, facility_code: str) -> SignedPayload:
    """Verify the prescriber's ES256 signature; anything else is refused before parsing."""
    kid = str(_header(compact)["kid"])
    found = await registry.signer(session, kid, facility_code)
    if found is None:
        raise _refuse(f"No registered prescriber has key id {kid!r}", ["header", "kid"], "unknown prescriber")
    prescriber, works_here = found
    try:
        verified = jws.deserialize_compact(
            compact, _registered_key(prescriber.public_jwk), algorithms=SIGNING_ALGORITHMS
        )
    except (JoseError, ValueError) as exc:
        raise _refuse(
            "The signature does not verify with the prescriber's registered key",
            ["signature"],
            "does not verify",
        ) from exc
    try:
        # What is signed is read strictly: UTF-8, no duplicate keys (which facility did the
        # signer mean?), no NaN, no lone surrogates, and no nesting deeper than a parser's stack.
        payload = parse_strict(verified.payload)
    except StrictJsonError as exc:
        raise InvalidContent.field(["payload"], f"the payload is not strict JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidContent.field(["payload"], "the payload is nested too deeply") from exc
    if not isinstance(payload, dict):
        raise InvalidContent.field(["payload"], "the payload must be a JSON object")
    return SignedPayload(prescriber, payload, bytes(verified.payload), payload_digest(compact), works_here)
