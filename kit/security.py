"""Secrets, the national signing keys, and the bearer tokens every client presents."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from kit.errors import Forbidden, Unauthorized
from kit.jsonstrict import StrictJsonError, parse_strict
from kit.settings import Settings
from kit.time import utcnow

# The only algorithm this system signs or accepts: algorithm confusion is refused by allow-list.
SIGNING_ALGORITHMS = ["ES256"]


class ClientKind(StrEnum):
    ADMIN = "admin"
    FACILITY = "facility"
    PHARMACY = "pharmacy"
    # A prescriber signed in through the national protocol (dang-nhap-bac-si): `sub` is
    # `FACILITY_CODE:PRESCRIBER_ID`, the facility it acts for and who it is.
    PRESCRIBER = "prescriber"


AUDIENCE = {
    ClientKind.ADMIN: "erx-api",
    ClientKind.FACILITY: "erx-api",
    ClientKind.PHARMACY: "erx-gateway",
    ClientKind.PRESCRIBER: "erx-api",
}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class SecretHasher:
    """argon2id hashing, offloaded to a thread because it is deliberately slow."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verifying against this when the client is unknown keeps timing uniform.
        self._dummy = self._hasher.hash(new_secret())

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, secret)

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        def _verify() -> bool:
            try:
                return self._hasher.verify(stored_hash or self._dummy, secret) and (stored_hash is not None)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(_verify)


class KeyRing:
    """The national system's EC P-256 keys: the newest signs, all of them verify (rotation)."""

    def __init__(self, keys: list[ECKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = keys
        self._derived: dict[str, bytes] = {}

    @property
    def active(self) -> ECKey:
        return self._keys[-1]

    @property
    def active_kid(self) -> str:
        return str(self.active.kid)

    def find(self, kid: str | None) -> ECKey | None:
        return next((k for k in self._keys if k.kid == kid), None)

    def derive(self, purpose: str, message: str) -> bytes:
        """A keyed digest of `message` for one purpose, from the oldest key (rotation keeps it).

        What is derived can be printed again at any time (a patient's access key) without being
        stored; only a holder of the national key can compute it.
        """
        key = self._derived.get(purpose)
        if key is None:
            private = str(self._keys[0].as_dict(private=True)["d"])
            key = self._derived[purpose] = hashlib.sha256(f"erx-derive:{purpose}:{private}".encode()).digest()
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**k.as_dict(private=False), "use": "sig", "alg": "ES256", "kid": k.kid} for k in self._keys
            ]
        }

    def sign_compact(self, payload: dict[str, Any]) -> str:
        header = {"alg": "ES256", "kid": self.active_kid}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return jws.serialize_compact(header, body, self.active, algorithms=SIGNING_ALGORITHMS)

    def verify_compact(self, value: str) -> dict[str, Any]:
        header = peek_header(value)
        key = self.find(header.get("kid"))
        if key is None:
            raise JoseError("unknown key id")
        obj = jws.deserialize_compact(value, key, algorithms=SIGNING_ALGORITHMS)
        payload: dict[str, Any] = json.loads(obj.payload)
        return payload

    @staticmethod
    def _generate() -> ECKey:
        key = ECKey.generate_key("P-256", private=True)
        # A short kid keeps the QR code small; 16 base64url characters are 96 bits.
        return ECKey.import_key({**key.as_dict(private=True), "kid": key.thumbprint()[:16]})

    @classmethod
    def load(cls, settings: Settings, *, create: bool = True) -> KeyRing:
        """Read keys from settings, else from the data directory, generating one on first run.

        `create=False` (the readiness check) only reads: no key there is an error.
        """
        if settings.signing_key is not None:
            data = json.loads(settings.signing_key.get_secret_value())
            items = data.get("keys", [data])
            return cls([_import_private(item) for item in items])
        key_dir = settings.data_dir / "keys"
        if create:
            key_dir.mkdir(parents=True, exist_ok=True)
        files = sorted(key_dir.glob("signing-*.jwk.json"))
        if not files:
            if not create:
                raise ValueError(f"no signing key in {key_dir}")
            cls._generate_first(key_dir)
            files = sorted(key_dir.glob("signing-*.jwk.json"))
        return cls([_import_private(json.loads(f.read_text())) for f in files])

    @classmethod
    def _generate_first(cls, key_dir: Path) -> None:
        """Create the first key exactly once, even when several processes start together.

        The key is written to a private temporary file and published with link(), which is
        atomic and fails if the name exists: readers never see a half-written key, and a
        process that loses the race simply loads the winner's key.
        """
        key = cls._generate()
        final = key_dir / "signing-00000000T000000000000.jwk.json"
        fd, temporary = tempfile.mkstemp(prefix=".new-key-", dir=key_dir)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(key.as_dict(private=True)))
            os.link(temporary, final)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)

    @classmethod
    def rotate(cls, key_dir: Path) -> Path:
        """Add a new key; it signs from now on while the older ones keep verifying."""
        key = cls._generate()
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        path = key_dir / f"signing-{stamp}.jwk.json"
        path.write_text(json.dumps(key.as_dict(private=True)))
        path.chmod(0o600)
        return path


def _import_private(data: dict[str, Any]) -> ECKey:
    key = ECKey.import_key(data)
    if key.as_dict(private=False).get("crv") != "P-256":
        raise ValueError("signing keys must be EC P-256")
    if key.kid is None:
        key = ECKey.import_key({**data, "kid": key.thumbprint()})
    return key


# A JOSE header names an algorithm and a key: a few hundred bytes. Longer is not a header.
MAX_HEADER_CHARS = 2048
# An access token of this system is well under 1 KB.
MAX_TOKEN_CHARS = 4096


def peek_header(compact: str) -> dict[str, Any]:
    """Decode a compact JWS header without verifying it (to choose the key); ValueError if unreadable."""
    part = compact.split(".", 1)[0]
    if len(part) > MAX_HEADER_CHARS:
        raise ValueError("header too long")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        header = parse_strict(raw)
    except (StrictJsonError, RecursionError, UnicodeDecodeError) as exc:
        raise ValueError("header is not strict JSON") from exc
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    for name, value in header.items():
        nested = isinstance(value, dict) or (
            isinstance(value, list) and not all(isinstance(v, str) for v in value)
        )
        if nested and name != "jwk":
            raise ValueError(f"header parameter {name!r} is nested")
    return header


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the verified token says."""

    kind: ClientKind
    client_id: str
    credentials_version: int


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True)
class VerifiedToken:
    principal: Principal
    audience: str
    expires_at: int


# Tokens whose signature this process has checked; a few MB at most.
VERIFIED_TOKENS_KEPT = 20_000
CLOCK_LEEWAY_SECONDS = 5


class TokenService:
    """Issue and verify the signed JWT access tokens of all three client kinds."""

    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        self._settings = settings
        self._keyring = keyring
        self._verified: dict[str, VerifiedToken] = {}

    def issue(self, principal: Principal, *, now: datetime | None = None) -> IssuedToken:
        now = now or utcnow()
        ttl = self._settings.access_token_ttl
        claims = {
            "iss": self._settings.issuer,
            "aud": AUDIENCE[principal.kind],
            "sub": principal.client_id,
            "kind": principal.kind.value,
            "ver": principal.credentials_version,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": "ES256", "kid": self._keyring.active_kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, self._keyring.active, algorithms=SIGNING_ALGORITHMS)
        return IssuedToken(access_token=token, expires_in=int(ttl.total_seconds()))

    def verify(self, token: str, *, expected: ClientKind, now: datetime | None = None) -> Principal:
        """The principal a token names, if this system signed it and it has not expired.

        A token's signature is checked once per process and remembered until the token expires:
        the signature cannot change, and whether its client may still act (status, credentials
        version) is checked against the database on every request by the caller.
        """
        moment = int((now or utcnow()).timestamp())
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("Invalid access token (too long)")
        known = self._verified.get(token)
        if known is None or moment > known.expires_at + CLOCK_LEEWAY_SECONDS:
            known = self._verify_signed(token, moment)
            self._remember(token, known)
        if known.principal.kind is not expected or known.audience != AUDIENCE[expected]:
            raise Forbidden(
                f"A {known.principal.kind.value} token cannot be used here; this needs a {expected.value} token"
            )
        return known.principal

    def _remember(self, token: str, known: VerifiedToken) -> None:
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            # Drop the oldest half: cheap, and a busy process keeps its recent callers.
            for stale in list(self._verified)[: VERIFIED_TOKENS_KEPT // 2]:
                del self._verified[stale]
        self._verified[token] = known

    def _verify_signed(self, token: str, moment: int) -> VerifiedToken:
        try:
            header = peek_header(token)
            key = self._keyring.find(header.get("kid"))
            if key is None:
                raise Unauthorized("The token was not signed by a key of this system")
            decoded = jwt.decode(token, key, algorithms=SIGNING_ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                now=moment,
                leeway=CLOCK_LEEWAY_SECONDS,
                iss={"essential": True, "value": self._settings.issuer},
                sub={"essential": True},
                exp={"essential": True},
                kind={"essential": True},
            )
            registry.validate(decoded.claims)
        except Unauthorized:
            raise
        except (JoseError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise Unauthorized(f"Invalid or expired access token ({type(exc).__name__})") from exc
        claims = decoded.claims
        try:
            kind = ClientKind(claims["kind"])
            principal = Principal(
                kind=kind, client_id=str(claims["sub"]), credentials_version=int(claims.get("ver", 0))
            )
            return VerifiedToken(principal, str(claims.get("aud", "")), int(claims["exp"]))
        except (ValueError, TypeError) as exc:
            raise Unauthorized("Unknown client kind in token") from exc


def client_credentials_scheme(token_url: str, name: str, description: str) -> OAuth2:
    """How the OpenAPI schema declares a bearer token from the client-credentials grant.

    `auto_error=False`: the scheme only documents; `bearer_token` refuses with problem+json.
    """
    flows = OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=token_url, scopes={}))
    return OAuth2(flows=flows, scheme_name=name, description=description, auto_error=False)


CORE_CLIENTS = client_credentials_scheme(
    "/api/v1/auth/token", "core", "Admin and facility tokens (client credentials, RFC 6749 section 4.4)"
)
PHARMACY_CLIENTS = client_credentials_scheme(
    "/gateway/v1/auth/token", "gateway", "Pharmacy tokens; the connection code is the client_id"
)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(
            "Send an access token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="erx"'},
        )
    return value.strip()
