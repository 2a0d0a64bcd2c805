"""Everything the bench knows about the project, in one place.

The packages are being reorganised; when a module moves, only this file changes. The rest of the
bench talks to the system over HTTP, to PostgreSQL with its own SQL (the schema's table and column
names are stable), or through the names below. Rules that the seeded data must satisfy (how the
QR text is signed, the digest of the lines) are reproduced here from `eprescribe/prescriptions/qr.py`
rather than imported, so a refactoring of the service cannot silently change what is seeded.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

# ---- how production runs the system -------------------------------------------------------

# The ASGI factory of all three services in one process (what `erx serve` runs).
APP_FACTORY = "erx.app:create_app"

# Settings, as environment variables (README "Settings").
ENV_DATABASE_URL = "DATABASE_URL"
ENV_ENVIRONMENT = "ERX_ENVIRONMENT"
ENV_SIGNING_KEY = "ERX_SIGNING_KEY"
ENV_DATA_DIR = "ERX_DATA_DIR"
ENV_TOKEN_TTL = "ERX_ACCESS_TOKEN_TTL_SECONDS"
ENV_IDENTITY_KEY = "ERX_IDENTITY_KEY"

# HTTP paths (../shared/CONTRACT.md).
FACILITY_TOKEN_PATH = "/api/v1/auth/token"
PHARMACY_TOKEN_PATH = "/gateway/v1/auth/token"
SUBMIT_PATH = "/api/v1/prescriptions"
LOOKUP_PATH = "/gateway/v1/prescriptions/{code}"
DISPENSE_PATH = "/gateway/v1/prescriptions/{code}/dispenses"
PRICES_PATH = "/portal/api/v1/prices"
PRODUCT_PATH = "/portal/api/v1/drugs/{registration_no}"
READY_PATH = "/readyz"

# Prescription codes: 5 facility characters, 7 of [0-9A-Z], '-', the kind (CONTRACT.md).
CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Which catalogue categories each prescription kind may carry (eprescribe/prescriptions/policy.py).
KIND_CATEGORIES = {
    "c": ("normal",),
    "n": ("narcotic",),
    "h": ("psychotropic", "precursor"),
    "y": ("traditional",),
    "t": ("traditional",),
}
CONTROLLED_CATEGORIES = ("narcotic", "psychotropic", "precursor")


def migrate(database_url: str) -> None:
    """Create or upgrade the schema with the project's own Alembic migrations."""
    from erx.migrate import upgrade
    from kit.settings import Settings

    upgrade(Settings.model_validate({"DATABASE_URL": database_url, "environment": "test"}))


def refresh_derived(database_url: str) -> None:
    """Fill what the system derives from rows the seed copied in: search words, listing counts."""
    import asyncio

    from eprescribe.catalogue import service as catalogue
    from kit.database import Database
    from kit.settings import Settings
    from pharmacy_gateway.prices import service as prices

    async def refresh() -> None:
        database = Database(Settings.model_validate({"DATABASE_URL": database_url, "environment": "test"}))
        try:
            async with database.sessionmaker() as session, session.begin():
                await catalogue.index_words(session)
                await prices.recount(session)
        finally:
            await database.dispose()

    asyncio.run(refresh())


def hash_secret(secret: str) -> str:
    """An argon2id hash with the project's default parameters, as the registry stores it."""
    import asyncio

    from kit.security import SecretHasher
    from kit.settings import Settings

    return asyncio.run(SecretHasher(Settings.model_validate({"environment": "test"})).hash(secret))


def fold(text: str) -> str:
    """Lower-case, strip diacritics, collapse spaces (the catalogue's `search_text`)."""
    from kit.text import fold as project_fold

    return project_fold(text)


def match_key(text: str) -> str:
    """Folded without spaces (the `*_key` columns that generic substitution compares)."""
    from kit.text import match_key as project_match_key

    return project_match_key(text)


def catalogue_csv() -> Path:
    """The demo catalogue shipped with the project (577 products)."""
    return Path(str(resources.files("eprescribe.catalogue") / "data" / "drugs.csv"))


# ---- reproduced from eprescribe/prescriptions/qr.py --------------------------------------------------


class Line(NamedTuple):
    line_no: int
    active_ingredient: str
    strength: str
    dosage_form: str
    quantity: int
    unit: str


def lines_digest(items: Sequence[Line]) -> str:
    """`service.lines_digest`: what the QR signs about the lines."""
    canonical = [
        [i.line_no, i.active_ingredient, i.strength, i.dosage_form, i.quantity, i.unit] for i in items
    ]
    raw = json.dumps(canonical, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()


def qr_claims(code: str, kind: str, facility_code: str, valid_until: datetime, digest: str) -> dict[str, Any]:
    """`service.qr_claims`: code, kind, facility, valid_until (epoch seconds), lines digest."""
    return {"c": code, "k": kind, "f": facility_code, "v": int(valid_until.timestamp()), "d": digest}


def qr_payload(claims: dict[str, Any]) -> bytes:
    """`KeyRing.sign_compact` signs the claims as compact, key-sorted JSON."""
    return json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()


def payload_digest(compact_jws: str) -> str:
    """`service._payload_bytes` + sha256: the unique digest of a submitted JWS payload."""
    return hashlib.sha256(compact_jws.split(".")[1].encode()).hexdigest()


def drug_row_keys(
    name: str, active_ingredient: str, strength: str, dosage_form: str, registration_no: str
) -> dict[str, str]:
    """`service._drug_from`: the folded columns of a catalogue row."""
    return {
        "ingredient_key": match_key(active_ingredient),
        "strength_key": match_key(strength),
        "form_key": match_key(dosage_form),
        "search_text": fold(" ".join([name, active_ingredient, registration_no])),
    }


def identity_key(data_dir: Path) -> str:
    """The bench's identity-number keys (ERX_IDENTITY_KEY), kept in its data directory.

    Production refuses to start without them. The seed encrypts under them and every bench
    server reads them, run after run: the file is the one the app itself generated there before
    production required the setting, so a database seeded then still reads.
    """
    from kit.pii import KEY_FILE, PiiKeys

    path = data_dir / "keys" / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PiiKeys.generate().to_json())
        path.chmod(0o600)
    return PiiKeys.from_json(path.read_text()).to_json()


def settings_for(database_url: str, signing_key: dict[str, str], data_dir: Path) -> Any:
    """The settings the bench server runs with (production, the seeded database, the bench keys)."""
    from kit.settings import Settings

    return Settings.model_validate(
        {
            "environment": "production",
            "DATABASE_URL": database_url,
            "signing_key": json.dumps(signing_key),
            "identity_key": identity_key(data_dir),
            "data_dir": data_dir,
            "access_token_ttl_seconds": 7 * 86400,
        }
    )


def app_for(settings: Any) -> tuple[Any, Any]:
    """A runtime and the all-in-one app on it, in this process."""
    from erx.app import create_app
    from kit.runtime import Runtime

    runtime = Runtime.build(settings)
    return runtime, create_app(runtime=runtime)
