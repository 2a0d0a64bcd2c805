"""Rules of the registry and of prescriptions. No HTTP here, and nothing commits."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from joserfc import jws as jose_jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from pydantic import ValidationError
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe import codes, repository
from eprescribe.exceptions import (
    InvalidClient,
    PrescriberNotAllowed,
    PrescriptionConflict,
    PrescriptionNotFound,
    SignatureRejected,
)
from eprescribe.models import (
    AdminClient,
    ClientStatus,
    Drug,
    DrugCategory,
    Facility,
    Pharmacy,
    PharmacyKind,
    Prescriber,
    PrescriberFacility,
    Prescription,
    PrescriptionItem,
    PrescriptionStatus,
)
from eprescribe.policy import POLICY, age_in_months, chronic_conditions, is_cancer_or_aids, is_hiv
from eprescribe.schemas import (
    DrugCreate,
    FacilityCreate,
    PharmacyCreate,
    PrescriberCreate,
    PrescriptionPayload,
    vn_time,
)
from erx import audit, idempotency, throttle
from erx.database import utcnow
from erx.errors import (
    Conflict,
    FieldErrors,
    Forbidden,
    InvalidContent,
    NotFound,
    Unauthorized,
    field_error,
)
from erx.runtime import Runtime
from erx.security import SIGNING_ALGORITHMS, ClientKind, Principal, SecretHasher, new_secret, peek_header
from erx.text import fold, match_key

ID_ALPHABET = string.digits + string.ascii_uppercase


# ---- credentials --------------------------------------------------------------------------


async def authenticate(
    session: AsyncSession, hasher: SecretHasher, kind: ClientKind, client_id: str, secret: str
) -> Principal:
    """Check client credentials; every failure looks the same to the caller."""
    client: AdminClient | Facility | Pharmacy | None
    if kind is ClientKind.ADMIN:
        client = await repository.get_admin(session, client_id)
    elif kind is ClientKind.FACILITY:
        client = await repository.get_facility(session, client_id.upper())
    else:
        client = await repository.get_pharmacy(session, client_id.upper())
    ok = await hasher.verify(client.secret_hash if client else None, secret)
    if client is None or not ok or client.status != ClientStatus.ACTIVE:
        raise InvalidClient()
    return Principal(kind=kind, client_id=_client_id(client), credentials_version=client.credentials_version)


async def authenticate_guarded(
    session: AsyncSession,
    runtime: Runtime,
    kind: ClientKind,
    client_id: str,
    secret: str,
    *,
    address: str,
    pace: throttle.Pace,
    refusal_rolls_back: bool = True,
) -> Principal:
    """Check credentials behind the guessing throttle, per client id and per address.

    Blocked: 429 with Retry-After. Slowed: the answer waits (after the transaction ends). A wrong
    secret is counted; when the caller answers it with an error (the request rolls back), the
    count is written in a transaction of its own so it is not rolled back with it.
    """
    settings = runtime.settings
    keys = throttle.subjects(settings, connection_code=client_id, address=address)
    found = await throttle.verdict(session, settings, keys)
    if found.blocked:
        raise throttle.refuse(found)
    if found.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    try:
        return await authenticate(session, runtime.hasher, kind, client_id.strip(), secret)
    except InvalidClient:
        if refusal_rolls_back:
            throttle.count_failure_durably(session, settings, keys)
        else:
            await throttle.count_failure(session, settings, keys)
        raise


def _client_id(client: AdminClient | Facility | Pharmacy) -> str:
    if isinstance(client, AdminClient):
        return client.client_id
    if isinstance(client, Facility):
        return client.facility_code
    return client.connection_code


async def current_client(session: AsyncSession, principal: Principal) -> AdminClient | Facility | Pharmacy:
    """Re-check a token's client on every request, so revocation takes effect at once."""
    client: AdminClient | Facility | Pharmacy | None
    if principal.kind is ClientKind.ADMIN:
        client = await repository.get_admin(session, principal.client_id)
    elif principal.kind is ClientKind.FACILITY:
        client = await repository.get_facility(session, principal.client_id)
    else:
        client = await repository.get_pharmacy(session, principal.client_id)
    if client is None or client.credentials_version != principal.credentials_version:
        raise Unauthorized("These credentials were replaced or removed; request a new token")
    if client.status != ClientStatus.ACTIVE:
        raise Unauthorized(f"This client is {client.status}")
    return client


# ---- registry ----------------------------------------------------------------------------


def _random_id(length: int) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


async def create_admin_client(
    session: AsyncSession,
    hasher: SecretHasher,
    *,
    name: str,
    client_id: str | None = None,
    secret: str | None = None,
) -> tuple[AdminClient, str]:
    secret = secret or new_secret()
    client = AdminClient(
        client_id=client_id or f"admin-{_random_id(8).lower()}",
        name=name,
        secret_hash=await hasher.hash(secret),
        created_at=utcnow(),
    )
    session.add(client)
    await session.flush()
    return client, secret


async def register_facility(
    session: AsyncSession, hasher: SecretHasher, data: FacilityCreate
) -> tuple[Facility, str]:
    if data.facility_code is not None:
        code = data.facility_code
        if await repository.get_facility(session, code) is not None:
            raise Conflict(
                f"Facility {code} is already registered",
                errors=[field_error(["body", "facility_code"], "already registered")],
            )
    else:
        for _ in range(20):
            code = data.province_code + _random_id(3)
            if await repository.get_facility(session, code) is None:
                break
        else:  # pragma: no cover - 46,656 codes per province
            raise Conflict("No free facility code left in this province")
    secret = new_secret()
    facility = Facility(
        facility_code=code,
        name=data.name,
        province_code=data.province_code,
        secret_hash=await hasher.hash(secret),
        created_at=utcnow(),
    )
    session.add(facility)
    await session.flush()
    return facility, secret


def validate_public_jwk(jwk: dict[str, Any], loc: Sequence[str | int]) -> ECKey:
    """Accept only a public EC P-256 key: no private part, no other curve or type."""
    if "d" in jwk:
        raise InvalidContent.field(loc, "this is a private key; register only the public JWK")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise InvalidContent.field(loc, "the key must be an EC P-256 public JWK")
    try:
        key = ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")})
    except (JoseError, KeyError, ValueError, TypeError) as exc:
        raise InvalidContent.field(loc, f"not a valid EC public key: {exc}") from exc
    return key


async def register_prescriber(session: AsyncSession, data: PrescriberCreate) -> Prescriber:
    key = validate_public_jwk(data.public_jwk, ["body", "public_jwk"])
    facility_codes = sorted(set(data.facility_codes))
    known = await repository.existing_facility_codes(session, facility_codes)
    missing = [c for c in facility_codes if c not in known]
    if missing:
        raise InvalidContent(
            f"Unknown facility codes: {', '.join(missing)}",
            errors=[
                field_error(["body", "facility_codes", data.facility_codes.index(c)], "unknown facility")
                for c in missing
            ],
        )
    if await repository.prescriber_by_license(session, data.license_no) is not None:
        raise Conflict(
            "A prescriber with this licence number is already registered",
            errors=[field_error(["body", "license_no"], "already registered")],
        )
    prescriber = Prescriber(
        prescriber_id="BS" + _random_id(8),
        full_name=data.full_name,
        license_no=data.license_no,
        public_jwk=key.as_dict(private=False),
        key_thumbprint=key.thumbprint(),
        controlled_allowed=data.controlled_allowed,
        created_at=utcnow(),
    )
    session.add(prescriber)
    await session.flush()
    for code in facility_codes:
        session.add(PrescriberFacility(prescriber_id=prescriber.prescriber_id, facility_code=code))
    await session.flush()
    return prescriber


KIND_PREFIX = {PharmacyKind.PHARMACY: "NT", PharmacyKind.DRUGSTORE: "QT", PharmacyKind.CABINET: "TT"}


async def register_pharmacy(
    session: AsyncSession, hasher: SecretHasher, data: PharmacyCreate, *, connection_code: str | None = None
) -> tuple[Pharmacy, str]:
    """Register an outlet; `connection_code` is only chosen by hand for fixed demo data."""
    for _ in range(20):
        code = connection_code or f"{data.province_code}{KIND_PREFIX[data.kind]}{_random_id(6)}"
        if await repository.get_pharmacy(session, code) is None:
            break
        if connection_code:
            raise Conflict(f"Connection code {connection_code} is taken")
    else:  # pragma: no cover
        raise Conflict("Could not allocate a connection code")
    secret = new_secret()
    pharmacy = Pharmacy(
        connection_code=code,
        name=data.name,
        kind=data.kind,
        province_code=data.province_code,
        address=data.address,
        latitude=data.latitude,
        longitude=data.longitude,
        controlled_licence=data.controlled_licence,
        secret_hash=await hasher.hash(secret),
        created_at=utcnow(),
    )
    session.add(pharmacy)
    await session.flush()
    return pharmacy, secret


PHARMACY_TRANSITIONS = {
    "suspend": ({ClientStatus.ACTIVE}, ClientStatus.SUSPENDED),
    "reinstate": ({ClientStatus.SUSPENDED}, ClientStatus.ACTIVE),
    "revoke": ({ClientStatus.ACTIVE, ClientStatus.SUSPENDED}, ClientStatus.REVOKED),
}


async def change_client_status(
    session: AsyncSession, kind: str, client_code: str, action: str
) -> Facility | Prescriber | Pharmacy:
    """Suspend, reinstate or revoke a facility, prescriber or pharmacy; effective at once."""
    client: Facility | Prescriber | Pharmacy | None
    if kind == "facility":
        client = await repository.get_facility(session, client_code.upper())
    elif kind == "prescriber":
        client = await repository.get_prescriber(session, client_code.upper())
    else:
        client = await repository.get_pharmacy(session, client_code.upper())
    if client is None:
        raise NotFound(f"No {kind} {client_code}")
    allowed_from, target = PHARMACY_TRANSITIONS[action]
    if client.status not in allowed_from:
        raise Conflict(f"A {client.status} {kind} cannot be {target}")
    client.status = target
    await session.flush()
    return client


async def change_pharmacy_status(session: AsyncSession, connection_code: str, action: str) -> Pharmacy:
    pharmacy = await change_client_status(session, "pharmacy", connection_code, action)
    assert isinstance(pharmacy, Pharmacy)
    return pharmacy


async def rotate_pharmacy_secret(
    session: AsyncSession, hasher: SecretHasher, connection_code: str
) -> tuple[Pharmacy, str]:
    """Issue a new secret; tokens issued under the old one stop working at once."""
    pharmacy = await repository.get_pharmacy(session, connection_code.upper())
    if pharmacy is None:
        raise NotFound(f"No pharmacy with connection code {connection_code}")
    if pharmacy.status == ClientStatus.REVOKED:
        raise Conflict("A revoked pharmacy cannot get a new secret")
    secret = new_secret()
    pharmacy.secret_hash = await hasher.hash(secret)
    pharmacy.credentials_version += 1
    await session.flush()
    return pharmacy, secret


async def get_pharmacy(session: AsyncSession, connection_code: str) -> Pharmacy | None:
    return await repository.get_pharmacy(session, connection_code.upper())


async def get_pharmacy_by_id(session: AsyncSession, pharmacy_id: int) -> Pharmacy | None:
    return await repository.get_pharmacy_by_id(session, pharmacy_id)


# ---- catalogue ---------------------------------------------------------------------------


def _drug_from(data: DrugCreate) -> Drug:
    now = utcnow()
    return Drug(
        registration_no=data.registration_no,
        name=data.name,
        active_ingredient=data.active_ingredient,
        strength=data.strength,
        dosage_form=data.dosage_form,
        unit=data.unit,
        packaging=data.packaging,
        manufacturer=data.manufacturer,
        country=data.country,
        category=data.category,
        declared_price=data.declared_price,
        ingredient_key=match_key(data.active_ingredient),
        strength_key=match_key(data.strength),
        form_key=match_key(data.dosage_form),
        search_text=fold(" ".join([data.name, data.active_ingredient, data.registration_no])),
        created_at=now,
        updated_at=now,
    )


async def add_drug(session: AsyncSession, data: DrugCreate) -> Drug:
    if await repository.get_drug(session, data.registration_no) is not None:
        raise Conflict(
            f"Product {data.registration_no} is already in the catalogue",
            errors=[field_error(["body", "registration_no"], "already registered")],
        )
    drug = _drug_from(data)
    session.add(drug)
    await session.flush()
    return drug


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] | None = None

    def __post_init__(self) -> None:
        self.rejected = self.rejected or []


CSV_FIELDS = (
    "registration_no",
    "name",
    "active_ingredient",
    "strength",
    "dosage_form",
    "unit",
    "packaging",
    "manufacturer",
    "country",
    "category",
    "declared_price",
)


async def import_drugs(
    session: AsyncSession,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    on_row: Callable[[], None] | None = None,
) -> ImportReport:
    """Add or update catalogue rows; a bad row is reported by line number and skipped."""
    report = ImportReport()
    assert report.rejected is not None
    for line_no, row in rows:
        try:
            price_text = (row.get("declared_price") or "").strip()
            values: dict[str, Any] = {
                k: (row.get(k) or "").strip() or None for k in CSV_FIELDS if k != "declared_price"
            }
            values["declared_price"] = int(price_text) if price_text else None
            data = DrugCreate.model_validate(values)
        except ValueError as exc:
            reason = _first_error(exc)
            report.rejected.append((line_no, reason))
        else:
            existing = await repository.get_drug(session, data.registration_no)
            fresh = _drug_from(data)
            if existing is None:
                session.add(fresh)
                report.added += 1
            else:
                for name in (*CSV_FIELDS, "ingredient_key", "strength_key", "form_key", "search_text"):
                    setattr(existing, name, getattr(fresh, name))
                existing.updated_at = fresh.updated_at
                report.updated += 1
        if on_row:
            on_row()
    await session.flush()
    return report


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return f"{field}: {err['msg']}" if field else str(err["msg"])
    return f"declared_price: {exc}"


async def search_catalogue(
    session: AsyncSession, *, q: str | None, category: str | None, limit: int, offset: int
) -> tuple[int, list[Drug]]:
    return await repository.search_drugs(session, q, category, limit, offset)


async def get_drug(session: AsyncSession, registration_no: str) -> Drug | None:
    return await repository.get_drug(session, registration_no.strip())


async def substitutes_for(
    session: AsyncSession, *, active_ingredient: str, strength: str, dosage_form: str
) -> list[Drug]:
    """Registered products a pharmacist may dispense for a line (generic substitution)."""
    return await repository.substitutes(
        session, match_key(active_ingredient), match_key(strength), match_key(dosage_form)
    )


async def substitutes_for_lines(
    session: AsyncSession, items: Sequence[PrescriptionItem]
) -> dict[int, list[Drug]]:
    """The products that may substitute for each line, by line_no, in one query for all lines."""
    keys = {item.line_no: (item.ingredient_key, item.strength_key, item.form_key) for item in items}
    products = await repository.substitutes_by_keys(session, sorted(set(keys.values())))
    return {line_no: products[key] for line_no, key in keys.items()}


def same_product_line(drug: Drug, item: PrescriptionItem) -> bool:
    return (drug.ingredient_key, drug.strength_key, drug.form_key) == (
        item.ingredient_key,
        item.strength_key,
        item.form_key,
    )


# ---- prescriptions: submission ------------------------------------------------------------


def lines_digest(items: Sequence[PrescriptionItem]) -> str:
    canonical = [
        [i.line_no, i.active_ingredient, i.strength, i.dosage_form, i.quantity, i.unit] for i in items
    ]
    raw = json.dumps(canonical, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()


@dataclass
class Submission:
    status_code: int
    body: dict[str, Any]


def _payload_bytes(compact: str) -> bytes:
    parts = compact.split(".")
    if len(parts) != 3:
        raise SignatureRejected(
            "The JWS must be in compact form: header.payload.signature",
            errors=[field_error(["body", "jws"], "not a compact JWS")],
        )
    return parts[1].encode()


async def _verify_jws(session: AsyncSession, compact: str) -> tuple[Prescriber, dict[str, Any]]:
    """Verify the prescriber's ES256 signature; anything else is refused before parsing."""
    try:
        header = peek_header(compact)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureRejected(
            "The JWS header cannot be read", errors=[field_error(["body", "jws"], "malformed JWS header")]
        ) from exc
    _payload_bytes(compact)
    if header.get("alg") not in SIGNING_ALGORITHMS:
        raise SignatureRejected(
            f"Algorithm {header.get('alg')!r} is not accepted; prescriptions are signed with ES256",
            errors=[field_error(["body", "jws", "header", "alg"], "only ES256 is accepted")],
        )
    if header.get("crit"):
        raise SignatureRejected(
            "Critical JWS header extensions are not supported",
            errors=[field_error(["body", "jws", "header", "crit"], "unsupported")],
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureRejected(
            "The JWS header must name the prescriber in `kid`",
            errors=[field_error(["body", "jws", "header", "kid"], "missing")],
        )
    prescriber = await repository.get_prescriber(session, kid)
    if prescriber is None:
        raise SignatureRejected(
            f"No registered prescriber has key id {kid!r}",
            errors=[field_error(["body", "jws", "header", "kid"], "unknown prescriber")],
        )
    key = ECKey.import_key(prescriber.public_jwk)
    try:
        verified = jose_jws.deserialize_compact(compact, key, algorithms=SIGNING_ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise SignatureRejected(
            "The signature does not verify with the prescriber's registered key",
            errors=[field_error(["body", "jws", "signature"], "does not verify")],
        ) from exc
    try:
        payload = json.loads(verified.payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidContent.field(["payload"], "the payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidContent.field(["payload"], "the payload must be a JSON object")
    return prescriber, payload


def _parse_payload(raw: dict[str, Any]) -> PrescriptionPayload:
    try:
        return PrescriptionPayload.model_validate(raw)
    except ValidationError as exc:
        errors = [field_error(["payload", *e["loc"]], e["msg"]) for e in exc.errors()]
        raise InvalidContent.from_errors(errors) from exc


async def _check_policy(
    session: AsyncSession, payload: PrescriptionPayload, prescriber: Prescriber, now: datetime
) -> dict[int, Drug]:
    """Apply every rule of the policy table; collect all field errors, then refuse at once."""
    errors: FieldErrors = []
    kind = payload.kind
    if kind in POLICY.controlled_kinds and not prescriber.controlled_allowed:
        raise PrescriberNotAllowed(
            "This prescriber is not authorised to prescribe narcotic or psychotropic drugs",
            errors=[field_error(["payload", "kind"], "controlled kind not allowed for this prescriber")],
        )
    issued_on = payload.issued_at.date()
    patient = payload.patient
    if patient.date_of_birth > issued_on:
        errors.append(field_error(["payload", "patient", "date_of_birth"], "is after the issue date"))
    elif age_in_months(patient.date_of_birth, issued_on) < POLICY.guardian_required_under_months:
        if patient.guardian is None:
            errors.append(
                field_error(["payload", "patient", "guardian"], "a child under 72 months needs a guardian")
            )
        if patient.weight_kg is None:
            errors.append(
                field_error(["payload", "patient", "weight_kg"], "a child under 72 months needs the weight")
            )
    if kind == "n" and not patient.national_id:
        errors.append(
            field_error(
                ["payload", "patient", "national_id"],
                "a narcotic prescription needs the patient's national ID",
            )
        )
    if payload.follow_up_date is not None and payload.follow_up_date < issued_on:
        errors.append(field_error(["payload", "follow_up_date"], "is before the issue date"))

    chronic = chronic_conditions()
    has_chronic = any(chronic.covers(d.icd10) for d in payload.diagnoses)
    has_cancer_or_aids = any(is_cancer_or_aids(d.icd10) for d in payload.diagnoses)
    if kind == "n":
        limit = POLICY.narcotic_max_days_per_round if has_cancer_or_aids else POLICY.narcotic_max_days_acute
        why = f"narcotics: at most {limit} days" + (
            " per round for cancer/AIDS patients" if has_cancer_or_aids else " for acute illness"
        )
    elif kind == "h":
        limit = POLICY.psychotropic_max_days_long_term if has_chronic else POLICY.psychotropic_max_days_acute
        why = f"psychotropics/precursors: at most {limit} days" + (
            " for long-term treatment" if has_chronic else " for acute illness"
        )
    else:
        limit = POLICY.max_days_supply_chronic if has_chronic else POLICY.max_days_supply
        why = f"at most {limit} days of supply" + (
            " with a chronic diagnosis" if has_chronic else " (90 needs a diagnosis on the chronic list)"
        )

    allowed = POLICY.kind_categories[kind]
    registered = await repository.drugs_by_registration(
        session, [i.registration_no for i in payload.items if i.registration_no]
    )
    products: dict[int, Drug] = {}
    for index, item in enumerate(payload.items):
        loc: list[str | int] = ["payload", "items", index]
        if item.days_supply > limit:
            errors.append(field_error([*loc, "days_supply"], why))
        keys = (match_key(item.active_ingredient), match_key(item.strength), match_key(item.dosage_form))
        if item.registration_no:
            drug = registered.get(item.registration_no)
            if drug is None:
                errors.append(
                    field_error([*loc, "registration_no"], "no such product in the national catalogue")
                )
                continue
            if (drug.ingredient_key, drug.strength_key, drug.form_key) != keys:
                errors.append(
                    field_error(
                        [*loc, "registration_no"],
                        "the product's active ingredient, strength or dosage form differs from the line",
                    )
                )
                continue
            categories = {drug.category}
            products[index] = drug
        else:
            categories = await repository.categories_for(session, *keys)
            if not categories:
                errors.append(
                    field_error(
                        [*loc, "active_ingredient"],
                        "no registered product has this active ingredient, strength and dosage form",
                    )
                )
                continue
        if DrugCategory.SUPPLEMENT in categories and not (categories - {DrugCategory.SUPPLEMENT}):
            errors.append(field_error([*loc, "active_ingredient"], "health supplements are never prescribed"))
        elif not categories & allowed:
            errors.append(
                field_error(
                    [*loc, "active_ingredient"],
                    f"a {'/'.join(sorted(categories))} drug does not belong on a prescription of kind '{kind}'"
                    " (one kind per prescription: split the visit)",
                )
            )
    if errors:
        raise InvalidContent.from_errors(errors)
    return products


def _check_issued_at(payload: PrescriptionPayload, now: datetime, runtime: Runtime) -> None:
    settings = runtime.settings
    issued = payload.issued_at
    if issued > now + timedelta(seconds=settings.clock_skew_seconds):
        raise InvalidContent.field(["payload", "issued_at"], "is in the future")
    if issued < now - timedelta(seconds=settings.issued_at_max_age_seconds):
        raise InvalidContent.field(
            ["payload", "issued_at"],
            f"is older than {settings.issued_at_max_age_seconds // 3600} hours; sign a fresh prescription",
        )


async def submit_prescription(
    session: AsyncSession,
    runtime: Runtime,
    *,
    facility: Facility,
    compact_jws: str,
    idempotency_key: str | None,
    base_url: str,
) -> Submission:
    """Verify, check and store a signed prescription; the whole of it or nothing."""
    compact_jws = compact_jws.strip()
    held: idempotency.Claim | None = None
    if idempotency_key is not None:
        outcome = await idempotency.claim(
            session,
            scope=f"facility:{facility.facility_code}:prescriptions",
            key=idempotency_key,
            request_hash=idempotency.request_fingerprint({"jws": compact_jws}),
        )
        if isinstance(outcome, idempotency.Replay):
            return Submission(outcome.status_code, outcome.body)
        held = outcome

    now = utcnow()
    prescriber, raw = await _verify_jws(session, compact_jws)
    payload = _parse_payload(raw)
    if payload.facility_code != facility.facility_code:
        raise Forbidden(
            f"This token belongs to facility {facility.facility_code}, the prescription names {payload.facility_code}",
            errors=[field_error(["payload", "facility_code"], "not the facility of the token")],
        )
    if prescriber.status != ClientStatus.ACTIVE:
        raise PrescriberNotAllowed(f"Prescriber {prescriber.prescriber_id} is {prescriber.status}")
    if not await repository.prescriber_works_at(session, prescriber.prescriber_id, facility.facility_code):
        raise PrescriberNotAllowed(
            f"Prescriber {prescriber.prescriber_id} is not registered at facility {facility.facility_code}",
            errors=[field_error(["body", "jws", "header", "kid"], "not registered at this facility")],
        )
    _check_issued_at(payload, now, runtime)
    products = await _check_policy(session, payload, prescriber, now)

    digest = hashlib.sha256(_payload_bytes(compact_jws)).hexdigest()
    if await repository.payload_seen(session, digest):
        raise PrescriptionConflict("This signed prescription was already submitted (replay refused)")

    code = await _choose_code(session, payload, facility.facility_code)
    replaced: Prescription | None = None
    if payload.replaces is not None:
        replaced = await _replaceable(session, payload.replaces, facility.facility_code)

    prescription = _build_prescription(payload, prescriber, compact_jws, digest, code, now)
    items = [_build_item(index, item, products.get(index)) for index, item in enumerate(payload.items)]
    prescription.lines_digest = lines_digest(items)
    prescription.qr_text = _qr_text(runtime, prescription)
    try:
        async with session.begin_nested():
            session.add(prescription)
            await session.flush()
    except IntegrityError as exc:
        # A concurrent replay of the same payload, or a code drawn twice (1 in 7.8e10).
        raise PrescriptionConflict(
            "This prescription or its code was stored by a concurrent request; nothing was stored"
        ) from exc
    assert prescription.id is not None
    for item in items:
        item.prescription_id = prescription.id
        session.add(item)
    await session.flush()
    if replaced is not None:
        assert replaced.id is not None
        if not await repository.mark_replaced(session, prescription_id=replaced.id, replaced_by=code):
            raise PrescriptionConflict(
                f"{replaced.code} can no longer be replaced: something was dispensed or it was cancelled",
                errors=[field_error(["payload", "replaces"], "not replaceable")],
            )
    await audit.record_access(
        session,
        prescription_code=code,
        actor_kind="facility",
        actor_code=facility.facility_code,
        action="create",
    )
    body = {
        "code": code,
        "status": PrescriptionStatus.ACTIVE.value,
        "valid_until": vn_time(prescription.valid_until),
        "qr_png": f"{base_url}api/v1/prescriptions/{code}/qr.png",
        "qr_svg": f"{base_url}api/v1/prescriptions/{code}/qr.svg",
    }
    if held is not None:
        await idempotency.complete(session, held, status_code=201, body=body)
    return Submission(201, body)


async def _choose_code(session: AsyncSession, payload: PrescriptionPayload, facility_code: str) -> str:
    if payload.code is not None:
        code = codes.canonical(payload.code)
        if code is None:
            raise InvalidContent.field(
                ["payload", "code"], "must be 5 facility characters, 7 of [0-9A-Z], '-' and the kind"
            )
        if codes.facility_of(code) != facility_code:
            raise InvalidContent.field(["payload", "code"], "must start with the facility code")
        if codes.kind_of(code) != payload.kind:
            raise InvalidContent.field(["payload", "code"], "must end with the prescription's kind")
        if await repository.prescription_exists(session, code):
            raise PrescriptionConflict(
                f"Code {code} is already in use", errors=[field_error(["payload", "code"], "already in use")]
            )
        return code
    for _ in range(5):
        code = codes.generate(facility_code, payload.kind)
        if not await repository.prescription_exists(session, code):
            return code
    raise PrescriptionConflict("Could not draw a free code; retry")  # pragma: no cover


async def _replaceable(session: AsyncSession, replaces: str, facility_code: str) -> Prescription:
    code = codes.canonical(replaces)
    if code is None:
        raise InvalidContent.field(["payload", "replaces"], "not a prescription code")
    old = await repository.get_prescription(session, code)
    if old is None or old.facility_code != facility_code:
        raise InvalidContent.field(["payload", "replaces"], "no prescription of this facility has this code")
    if old.status != PrescriptionStatus.ACTIVE:
        raise PrescriptionConflict(
            f"{code} is {old.status}; only a prescription with nothing dispensed can be replaced",
            errors=[field_error(["payload", "replaces"], "not replaceable")],
        )
    return old


def _build_prescription(
    payload: PrescriptionPayload,
    prescriber: Prescriber,
    compact_jws: str,
    digest: str,
    code: str,
    now: datetime,
) -> Prescription:
    patient = payload.patient
    return Prescription(
        code=code,
        kind=payload.kind,
        status=PrescriptionStatus.ACTIVE,
        facility_code=payload.facility_code,
        prescriber_id=prescriber.prescriber_id,
        issued_at=payload.issued_at,
        valid_until=payload.issued_at + POLICY.collection_window,
        replaces_code=codes.canonical(payload.replaces) if payload.replaces else None,
        patient_full_name=patient.full_name,
        patient_date_of_birth=patient.date_of_birth,
        patient_gender=patient.gender,
        patient_national_id=patient.national_id,
        patient_insurance_no=patient.insurance_no,
        patient_weight_kg=patient.weight_kg,
        patient_phone=patient.phone,
        patient_address=patient.address,
        guardian=patient.guardian.model_dump(exclude_none=True) if patient.guardian else None,
        diagnoses=[d.model_dump() for d in payload.diagnoses],
        notes=payload.notes,
        follow_up_date=payload.follow_up_date,
        sensitive=any(is_hiv(d.icd10) for d in payload.diagnoses),
        jws=compact_jws,
        payload_digest=digest,
        lines_digest="",
        qr_text="",
        created_at=now,
    )


def _build_item(index: int, item: Any, product: Drug | None) -> PrescriptionItem:
    return PrescriptionItem(
        prescription_id=0,
        line_no=index + 1,
        active_ingredient=item.active_ingredient,
        strength=item.strength,
        dosage_form=item.dosage_form,
        registration_no=item.registration_no,
        quantity=item.quantity,
        unit=item.unit,
        instructions=item.instructions,
        days_supply=item.days_supply,
        dispensed=0,
        remaining=item.quantity,
        ingredient_key=match_key(item.active_ingredient),
        strength_key=match_key(item.strength),
        form_key=match_key(item.dosage_form),
    )


def qr_claims(prescription: Prescription, digest_of_lines: str) -> dict[str, Any]:
    """What the QR's JWS signs: code, kind, facility, valid_until and a digest of the lines."""
    return {
        "c": prescription.code,
        "k": prescription.kind,
        "f": prescription.facility_code,
        "v": int(prescription.valid_until.timestamp()),
        "d": digest_of_lines,
    }


def _qr_text(runtime: Runtime, prescription: Prescription) -> str:
    """`CODE.<JWS>`: the national key signs what a pharmacy needs to trust a paper copy offline."""
    claims = qr_claims(prescription, prescription.lines_digest)
    return f"{prescription.code}.{runtime.keyring.sign_compact(claims)}"


# ---- prescriptions: reading, cancelling --------------------------------------------------


def status_at(status: str, valid_until: datetime, now: datetime) -> str:
    """`expired` is derived: an undispensed or partly dispensed prescription past valid_until."""
    if status in (PrescriptionStatus.ACTIVE, PrescriptionStatus.PARTIALLY_DISPENSED) and now > valid_until:
        return PrescriptionStatus.EXPIRED.value
    return str(status)


def effective_status(prescription: Prescription, now: datetime | None = None) -> str:
    """The status a reader sees now (stored status, or `expired`)."""
    return status_at(prescription.status, prescription.valid_until, now or utcnow())


async def _owned(
    session: AsyncSession, facility: Facility, code_text: str, action: str, address: str | None
) -> Prescription:
    code = codes.canonical(code_text)
    if code is None:
        raise PrescriptionNotFound(code_text)
    prescription = await repository.get_prescription(session, code)
    if prescription is None or prescription.facility_code != facility.facility_code:
        if prescription is not None:
            # Another facility tried: the owner and the patient get to see that attempt.
            await audit.record_access(
                session,
                prescription_code=code,
                actor_kind="facility",
                actor_code=facility.facility_code,
                action=f"{action}_denied",
                client_address=address,
                durable=True,
            )
        raise PrescriptionNotFound(code)
    return prescription


@dataclass
class PrescriptionRecord:
    prescription: Prescription
    items: list[PrescriptionItem]
    prescriber: Prescriber
    status: str


async def read_for_facility(
    session: AsyncSession,
    facility: Facility,
    code_text: str,
    *,
    action: str = "read",
    address: str | None = None,
) -> PrescriptionRecord:
    prescription = await _owned(session, facility, code_text, action, address)
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind="facility",
        actor_code=facility.facility_code,
        action=action,
        client_address=address,
    )
    return await load_record(session, prescription)


async def load_record(session: AsyncSession, prescription: Prescription) -> PrescriptionRecord:
    assert prescription.id is not None
    prescriber = await repository.get_prescriber(session, prescription.prescriber_id)
    assert prescriber is not None
    return PrescriptionRecord(
        prescription=prescription,
        items=await repository.items_of(session, prescription.id),
        prescriber=prescriber,
        status=effective_status(prescription),
    )


async def cancel(
    session: AsyncSession, facility: Facility, code_text: str, reason: str, address: str | None
) -> Prescription:
    prescription = await _owned(session, facility, code_text, "cancel", address)
    assert prescription.id is not None
    now = utcnow()
    if not await repository.mark_cancelled(session, prescription_id=prescription.id, reason=reason, at=now):
        await session.refresh(prescription)
        raise PrescriptionConflict(
            f"{prescription.code} is {prescription.status}; only a prescription with nothing dispensed can be cancelled"
        )
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind="facility",
        actor_code=facility.facility_code,
        action="cancel",
        client_address=address,
    )
    await session.refresh(prescription)
    return prescription


async def access_log(
    session: AsyncSession, facility: Facility, code_text: str, address: str | None
) -> list[audit.AccessLogEntry]:
    prescription = await _owned(session, facility, code_text, "read_access_log", address)
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind="facility",
        actor_code=facility.facility_code,
        action="read_access_log",
        client_address=address,
    )
    return await audit.entries_for(session, prescription.code)


async def recent_for_prescriber(
    session: AsyncSession, facility: Facility, prescriber_id: str, limit: int = 20
) -> list[Prescription]:
    return await repository.recent_for_prescriber(session, prescriber_id, facility.facility_code, limit)


# ---- prescriptions: what the gateway needs ------------------------------------------------


async def find_prescription(session: AsyncSession, code: str) -> Prescription | None:
    """Look a canonical code up (the gateway checks who may see it)."""
    return await repository.get_prescription(session, code)


async def open_for_dispensing(
    session: AsyncSession, prescription_id: int, now: datetime
) -> Prescription | None:
    """Lock the prescription row for this transaction if it may still be dispensed.

    Concurrent dispenses, a cancellation or a replacement of the same prescription queue on
    this lock, and PostgreSQL re-checks the WHERE clause on the row they find after the wait.
    """
    return await repository.lock_prescription(
        session,
        prescription_id,
        statuses=(PrescriptionStatus.ACTIVE, PrescriptionStatus.PARTIALLY_DISPENSED),
        valid_at=now,
    )


async def take_quantity(
    session: AsyncSession, prescription_id: int, line_no: int, quantity: int
) -> tuple[int, int] | None:
    """Move `quantity` from remaining to dispensed if that much remains; else None."""
    return await repository.shift_quantity(session, prescription_id, line_no, quantity)


async def return_quantity(
    session: AsyncSession, prescription_id: int, line_no: int, quantity: int
) -> tuple[int, int] | None:
    """Give back a voided quantity; never more than was dispensed."""
    return await repository.shift_quantity(session, prescription_id, line_no, -quantity)


async def settle_status(session: AsyncSession, prescription_id: int) -> str:
    """Recompute the stored status from the lines after a dispense or a void."""
    items = await repository.items_of(session, prescription_id)
    if all(i.remaining == 0 for i in items):
        status = PrescriptionStatus.DISPENSED
    elif any(i.dispensed > 0 for i in items):
        status = PrescriptionStatus.PARTIALLY_DISPENSED
    else:
        status = PrescriptionStatus.ACTIVE
    # A cancelled or replaced prescription keeps its status (nothing can be dispensed there).
    await repository.set_dispensing_status(session, prescription_id, status)
    return status.value


async def items_for(session: AsyncSession, prescription_id: int) -> list[PrescriptionItem]:
    return await repository.items_of(session, prescription_id)


async def prescriber_and_facility_names(session: AsyncSession, prescription: Prescription) -> tuple[str, str]:
    prescriber = await repository.get_prescriber(session, prescription.prescriber_id)
    facility = await repository.get_facility(session, prescription.facility_code)
    return (prescriber.full_name if prescriber else "", facility.name if facility else "")


async def replace_prescriber_key(
    session: AsyncSession, prescriber_id: str, public_jwk: dict[str, Any]
) -> Prescriber:
    """Register a new public key (lost device, new browser); older signatures stay stored."""
    prescriber = await repository.get_prescriber(session, prescriber_id)
    if prescriber is None:
        raise NotFound(f"No prescriber {prescriber_id}")
    key = validate_public_jwk(public_jwk, ["body", "public_jwk"])
    prescriber.public_jwk = key.as_dict(private=False)
    prescriber.key_thumbprint = key.thumbprint()
    await session.flush()
    return prescriber


async def reset_facility_secret(session: AsyncSession, hasher: SecretHasher, facility_code: str) -> str:
    facility = await repository.get_facility(session, facility_code)
    if facility is None:
        raise NotFound(f"No facility {facility_code}")
    secret = new_secret()
    facility.secret_hash = await hasher.hash(secret)
    facility.credentials_version += 1
    await session.flush()
    return secret


async def get_prescriber(session: AsyncSession, prescriber_id: str) -> Prescriber | None:
    return await repository.get_prescriber(session, prescriber_id)


async def get_facility(session: AsyncSession, facility_code: str) -> Facility | None:
    return await repository.get_facility(session, facility_code)


async def current_admin_or_none(session: AsyncSession, client_id: str) -> AdminClient | None:
    return await repository.get_admin(session, client_id)


async def reset_admin_secret(
    session: AsyncSession, hasher: SecretHasher, client_id: str, secret: str
) -> None:
    client = await repository.get_admin(session, client_id)
    if client is None:
        raise NotFound(f"No admin client {client_id}")
    client.secret_hash = await hasher.hash(secret)
    client.credentials_version += 1
    await session.flush()


async def prescriber_by_license(session: AsyncSession, license_no: str) -> Prescriber | None:
    return await repository.prescriber_by_license(session, license_no)


# ---- what the public price portal reads (price_portal.service) -----------------------------


async def drugs_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Drug]:
    return {d.id: d for d in await repository.drugs_by_ids(session, ids) if d.id is not None}


async def drugs_matching_words(
    session: AsyncSession, terms: Sequence[str], *, category: str | None, limit: int
) -> list[Drug]:
    """Products with a word starting with every folded term (terms with digits match anywhere)."""
    return await repository.drugs_matching_words(session, terms, category, limit)


async def drugs_similar_words(
    session: AsyncSession, terms: Sequence[str], *, category: str | None, limit: int
) -> list[Drug] | None:
    """Typo-tolerant match through pg_trgm; None when this database has no trigram support."""
    if not await repository.trigram_search_available(session):
        return None
    return await repository.drugs_similar_words(session, terms, category, limit)


async def drug_search_texts(session: AsyncSession, *, category: str | None) -> list[tuple[int, str]]:
    """(id, folded text) of every product, for matching in Python where SQL cannot."""
    return await repository.drug_search_texts(session, category)


def drug_ids_in_category_query(category: str) -> Select[int]:
    """A subquery of the ids of one category's products, to compose into another context's query."""
    return repository.drug_ids_in_category_query(category)


async def drugs_by_registration_numbers(session: AsyncSession, numbers: Sequence[str]) -> dict[str, Drug]:
    found: dict[str, Drug] = {}
    unique = sorted(set(numbers))
    for start in range(0, len(unique), 1000):
        found.update(await repository.drugs_by_registration(session, unique[start : start + 1000]))
    return found


async def pharmacies_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Pharmacy]:
    return {p.id: p for p in await repository.pharmacies_by_ids(session, ids) if p.id is not None}


def inactive_pharmacy_ids_query() -> Select[int]:
    """A subquery of suspended or revoked outlets (a small set) that the public must not see."""
    return repository.inactive_pharmacy_ids_query()


async def pharmacies_with_code_prefix(session: AsyncSession, prefix: str) -> list[Pharmacy]:
    return await repository.pharmacies_with_code_prefix(session, prefix.upper())


async def register_demo_pharmacies(
    session: AsyncSession, hasher: SecretHasher, outlets: Sequence[tuple[str, PharmacyCreate]]
) -> None:
    """Register many synthetic outlets at once (demo and bench data); nobody can log in as them.

    One random secret, hashed once and never shown, is shared: hashing thousands of secrets
    would take minutes and these outlets never authenticate.
    """
    secret_hash = await hasher.hash(new_secret())
    now = utcnow()
    rows: list[dict[str, object]] = [
        {
            "connection_code": code.upper(),
            "name": data.name,
            "kind": str(data.kind),
            "province_code": data.province_code,
            "address": data.address,
            "latitude": data.latitude,
            "longitude": data.longitude,
            "controlled_licence": data.controlled_licence,
            "secret_hash": secret_hash,
            "status": ClientStatus.ACTIVE.value,
            "credentials_version": 1,
            "created_at": now,
        }
        for code, data in outlets
    ]
    for start in range(0, len(rows), 1000):
        await repository.insert_pharmacies(session, rows[start : start + 1000])


# ---- what the pharmacy gateway needs to void a dispense (pharmacy_gateway.service) ----------


async def lock_prescription(session: AsyncSession, prescription_id: int) -> Prescription | None:
    """Lock the prescription row whatever its status (a void may reopen a dispensed one).

    Voids and dispenses of one prescription queue on this lock, so settle_status never
    computes a status from lines another transaction is still changing.
    """
    return await repository.lock_prescription(session, prescription_id)


# ---- what the browser consoles and the patient view need (eprescribe.console, patient_view) ---


PATIENT_ACTOR = "patient"


async def prescribers_at_facility(session: AsyncSession, facility: Facility) -> list[Prescriber]:
    """List every prescriber registered at this facility, by name (the console offers the active ones)."""
    return await repository.prescribers_at_facility(session, facility.facility_code)


async def console_prescriber(session: AsyncSession, facility: Facility, prescriber_id: str) -> Prescriber:
    """Return the prescriber a console session acts as: active and registered at its facility."""
    prescriber = await repository.get_prescriber(session, prescriber_id.strip().upper())
    if (
        prescriber is None
        or prescriber.status != ClientStatus.ACTIVE
        or not await repository.prescriber_works_at(session, prescriber.prescriber_id, facility.facility_code)
    ):
        raise PrescriberNotAllowed(
            f"Prescriber {prescriber_id} is not an active prescriber of facility {facility.facility_code}"
        )
    return prescriber


async def open_for_patient(
    session: AsyncSession, code_text: str, date_of_birth: date, *, address: str | None
) -> Prescription | None:
    """Return the prescription when the date of birth matches its patient's; log each try.

    The code and the date of birth together are the patient's secret: a wrong date and an
    unknown code get the same answer (None).
    """
    code = codes.canonical(code_text)
    prescription = await repository.get_prescription(session, code) if code is not None else None
    if prescription is None:
        return None
    matches = prescription.patient_date_of_birth == date_of_birth
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind=PATIENT_ACTOR,
        actor_code=PATIENT_ACTOR,
        action="patient_sign_in" if matches else "patient_sign_in_denied",
        client_address=address,
    )
    return prescription if matches else None


async def read_for_patient(
    session: AsyncSession, code: str, *, action: str, address: str | None
) -> PrescriptionRecord | None:
    """Read the patient's own prescription (after open_for_patient) and write it to the access log."""
    prescription = await repository.get_prescription(session, code)
    if prescription is None:
        return None
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind=PATIENT_ACTOR,
        actor_code=PATIENT_ACTOR,
        action=action,
        client_address=address,
    )
    return await load_record(session, prescription)


async def access_entries(session: AsyncSession, prescription: Prescription) -> list[audit.AccessLogEntry]:
    """List who read or changed this prescription (the caller has already logged its own read)."""
    return await audit.entries_for(session, prescription.code)


async def actor_names(
    session: AsyncSession, entries: Iterable[audit.AccessLogEntry]
) -> dict[tuple[str, str], str]:
    """Name the facilities and pharmacies of an access log, by (actor_kind, actor_code)."""
    names: dict[tuple[str, str], str] = {}
    for entry in entries:
        key = (entry.actor_kind, entry.actor_code)
        if key in names:
            continue
        if entry.actor_kind == "facility":
            facility = await repository.get_facility(session, entry.actor_code)
            if facility is not None:
                names[key] = facility.name
        elif entry.actor_kind == "pharmacy":
            pharmacy = await repository.get_pharmacy(session, entry.actor_code)
            if pharmacy is not None:
                names[key] = pharmacy.name
    return names


async def inactive_pharmacy_ids(session: AsyncSession, *, limit: int) -> list[int]:
    """Up to `limit` suspended or revoked outlets (a partial index keeps this instant)."""
    return await repository.inactive_pharmacy_ids(session, limit)


async def drug_ids_in_category(session: AsyncSession, category: str, *, limit: int) -> list[int]:
    """Up to `limit` ids of one category's products."""
    return await repository.drug_ids_in_category(session, category, limit)
