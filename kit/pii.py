"""Identity numbers at rest: AES-256-GCM under a rotatable key, and a keyed blind index to find them.

A stored value reads `<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`: the key id travels with each
value, so a new key encrypts from the moment it is active while older values stay readable until
`erx pii rotate` re-encrypts them. The column's name is the associated data, so a value copied
into another column does not decrypt. Equality lookups use HMAC-SHA256 of the normalised value
under a separate index key (the blind index), which is never rotated with the encryption keys.

The keys come from `ERX_IDENTITY_KEY` (JSON, see `PiiKeys.load`); without it, development and demo
runs generate a key file in the data directory on first start, like the signing key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from kit.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
INDEX_BYTES = 16
KEY_FILE = "pii-keys.json"
# What `Settings.identity_key` or the key file holds.
EXAMPLE = (
    '{"active": "k1", "keys": {"k1": "<base64 of 32 random bytes>"}, "index_key": "<base64 of 32 bytes>"}'
)


class PiiKeyError(ValueError):
    """The keys are missing or malformed, or a value names a key that is not configured."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(text: str, what: str) -> bytes:
    try:
        # Standard or URL-safe alphabet, padded or not.
        cleaned = text.strip().replace("-", "+").replace("_", "/").rstrip("=")
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except ValueError as exc:
        raise PiiKeyError(f"{what} is not base64") from exc
    if len(raw) != KEY_BYTES:
        raise PiiKeyError(f"{what} must be {KEY_BYTES} bytes, not {len(raw)}")
    return raw


@dataclass(frozen=True)
class PiiKeys:
    """The encryption keys by id, the one that encrypts now, and the blind-index key."""

    keys: Mapping[str, bytes]
    active: str
    index_key: bytes

    @classmethod
    def from_json(cls, text: str) -> PiiKeys:
        try:
            data = json.loads(text)
            keys = {str(kid): _key(str(value), f"key {kid}") for kid, value in data["keys"].items()}
            active = str(data["active"])
            index_key = _key(str(data["index_key"]), "index_key")
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise PiiKeyError(f"the PII keys must read like {EXAMPLE}") from exc
        if active not in keys:
            raise PiiKeyError(f"the active PII key {active!r} is not among the keys")
        if any(not kid or ":" in kid or len(kid) > 16 for kid in keys):
            raise PiiKeyError("a PII key id is 1-16 characters without ':'")
        return cls(keys, active, index_key)

    def to_json(self) -> str:
        return json.dumps(
            {
                "active": self.active,
                "keys": {kid: _b64(key) for kid, key in self.keys.items()},
                "index_key": _b64(self.index_key),
            }
        )

    @classmethod
    def generate(cls) -> PiiKeys:
        kid = secrets.token_hex(4)
        return cls({kid: secrets.token_bytes(KEY_BYTES)}, kid, secrets.token_bytes(KEY_BYTES))

    def with_new_key(self) -> PiiKeys:
        """These keys plus a fresh one that encrypts from now on (the index key stays)."""
        kid = secrets.token_hex(4)
        return PiiKeys({**self.keys, kid: secrets.token_bytes(KEY_BYTES)}, kid, self.index_key)

    @classmethod
    def load(cls, settings: Settings, *, create: bool = True) -> PiiKeys:
        """The keys of `ERX_IDENTITY_KEY`, else of the data directory's key file (made on first run)."""
        if settings.identity_key is not None:
            return cls.from_json(settings.identity_key.get_secret_value())
        path = key_file(settings)
        if not path.exists():
            if not create:
                raise PiiKeyError(f"no PII keys in {path}")
            _publish(path, cls.generate().to_json())
        return cls.from_json(path.read_text())

    # ---- values -------------------------------------------------------------------------------

    @cached_property
    def _aead(self) -> dict[str, AESGCM]:
        # Building an AESGCM costs more than sealing a short value with it: once per key.
        return {kid: AESGCM(key) for kid, key in self.keys.items()}

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.active].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self.active}:{_b64(nonce + sealed)}"

    def decrypt(self, stored: str, context: str) -> str:
        kid, _, body = stored.partition(":")
        aead = self._aead.get(kid)
        if aead is None or not body:
            raise PiiKeyError(f"a stored {context} names key {kid!r}, which is not configured")
        raw = _unb64(body)
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except InvalidTag as exc:
            raise PiiKeyError(f"a stored {context} does not decrypt under key {kid!r}") from exc

    def blind_index(self, plaintext: str, context: str) -> str:
        """The lookup key of a value: equal values give equal keys, and nothing else is learnt."""
        mac = hmac.new(self.index_key, f"{context}\0{plaintext}".encode(), hashlib.sha256)
        return mac.hexdigest()[: 2 * INDEX_BYTES]

    def key_of(self, stored: str) -> str:
        return stored.partition(":")[0]


def key_file(settings: Settings) -> Path:
    return settings.data_dir / "keys" / KEY_FILE


def _publish(path: Path, text: str) -> None:
    """Write the first key file exactly once, even when several processes start together."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".new-pii-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def replace_key_file(settings: Settings, keys: PiiKeys) -> Path:
    """Write new keys over the data directory's key file (atomically; the old keys stay in it)."""
    path = key_file(settings)
    fd, temporary = tempfile.mkstemp(prefix=".new-pii-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(keys.to_json())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


# ---- the engine carries its keys; columns encrypt and decrypt through them -------------------

_DIALECT_ATTRIBUTE = "erx_pii_keys"


def attach(dialect: Dialect, keys: PiiKeys) -> None:
    """Give an engine's dialect the keys its encrypted columns use (one engine, one key set)."""
    setattr(dialect, _DIALECT_ATTRIBUTE, keys)


def keys_of(dialect: Dialect) -> PiiKeys:
    keys: PiiKeys | None = getattr(dialect, _DIALECT_ATTRIBUTE, None)
    if keys is None:
        raise PiiKeyError("this engine has no PII keys (kit.database.create_engine attaches them)")
    return keys


class EncryptedString(TypeDecorator[str]):
    """A string stored encrypted; `context` (table.column) binds each value to its column."""

    impl = String
    cache_ok = True

    def __init__(self, length: int, context: str) -> None:
        super().__init__(length)
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keys_of(dialect).encrypt(value, self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keys_of(dialect).decrypt(value, self.context)


class EncryptedText(EncryptedString):
    """Text of any length stored encrypted."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        TypeDecorator.__init__(self)
        self.context = context


class JSONWithEncryptedKeys(TypeDecorator[dict[str, Any]]):
    """A JSON object whose named keys hold encrypted strings (a guardian's citizen ID)."""

    impl = JSON
    cache_ok = True

    def __init__(self, context: str, encrypted: tuple[str, ...]) -> None:
        super().__init__()
        self.context = context
        self.encrypted = encrypted

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        keys = keys_of(dialect)
        return {
            k: keys.encrypt(v, f"{self.context}.{k}") if k in self.encrypted and isinstance(v, str) else v
            for k, v in value.items()
        }

    def process_result_value(self, value: dict[str, Any] | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        keys = keys_of(dialect)
        return {
            k: keys.decrypt(v, f"{self.context}.{k}") if k in self.encrypted and isinstance(v, str) else v
            for k, v in value.items()
        }


__all__ = [
    "EncryptedString",
    "EncryptedText",
    "JSONWithEncryptedKeys",
    "PiiKeyError",
    "PiiKeys",
    "attach",
    "key_file",
    "keys_of",
    "replace_key_file",
]
