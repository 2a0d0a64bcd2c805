"""The limit: the system's lookup, dispense and submit as bare Starlette + asyncpg, no ORM.

Each route runs the very statements of `bench.minimal.sql`, in the same order and in one
transaction, and answers a body of the same shape; the server flags are the system's. What it
leaves out is what a framework, an ORM and validation layers add, so `system / limit` is the share
of the achievable throughput the system reaches on this machine. Liberties, all on the CPU side:
the bearer token's claims are read without checking its signature (the brief counts one ES256
verification for submit, the prescriber's), and the payload is checked only for what the SQL
needs. Configured by DATABASE_URL and ERX_SIGNING_KEY (the national key that signs QR texts).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import jose, project
from bench.minimal import sql
from eprescribe.prescriptions.models import GUARDIAN, INSURANCE_NO, JWS, NATIONAL_ID
from kit.pii import PiiKeys

VIETNAM = timezone(timedelta(hours=7), "ICT")
COLLECTION_WINDOW = timedelta(days=5)
LOOKUP_BLOCK = 100  # ERX_THROTTLE_LOOKUP_BLOCK_FAILURES
SIGNING_JWK: dict[str, str] = json.loads(os.environ.get(project.ENV_SIGNING_KEY, "{}") or "{}")
NATIONAL_KID = SIGNING_JWK.get("kid", "")
NATIONAL_KEY = jose.load_private(SIGNING_JWK) if SIGNING_JWK else None
NATIONAL_PUBLIC = NATIONAL_KEY.public_key() if NATIONAL_KEY else None
POOL: asyncpg.Pool | None = None
# The system stores identity numbers and the JWS sealed (AES-GCM, kit/pii.py) with blind indexes
# for equality search: the limit does the same work, under the same keys, so each reads the other's rows.
GUARDIAN_NATIONAL_ID = f"{GUARDIAN}.national_id"
PII = PiiKeys.from_json(os.environ[project.ENV_IDENTITY_KEY])  # what the bench gives the system too


def _sealed(value: str | None, context: str) -> str | None:
    return PII.encrypt(value, context) if value else None


def _index(value: str | None, context: str) -> str | None:
    return PII.blind_index(value, context) if value else None


def pool() -> asyncpg.Pool:
    assert POOL is not None
    return POOL


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    global POOL
    url = os.environ[project.ENV_DATABASE_URL].replace("postgresql+asyncpg://", "postgresql://")
    # The system's pool: 10 connections and as many again on overflow, per process.
    POOL = await asyncpg.create_pool(url, min_size=10, max_size=20)
    try:
        yield
    finally:
        await POOL.close()


def problem(status: int, title: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": title},
        status_code=status,
        media_type="application/problem+json",
    )


def claims_of(request: Request) -> dict[str, Any] | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return None
    claims = json.loads(jose.b64url_decode(token.split(".")[1]))
    return claims if isinstance(claims, dict) else None


def vn(value: datetime) -> str:
    return value.astimezone(VIETNAM).isoformat()


def canonical(text: str) -> str | None:
    head = text.strip().split(".", 1)[0]
    body, sep, kind = head.rpartition("-")
    if not sep or len(body) != 12 or kind.lower() not in "cnhyt":
        return None
    return f"{body.upper()}-{kind.lower()}"


def status_at(status: str, valid_until: datetime, now: datetime) -> str:
    if status in ("active", "partially_dispensed") and now > valid_until:
        return "expired"
    return status


async def readyz(_request: Request) -> Response:
    async with pool().acquire() as conn:
        await conn.fetchval("SELECT 1")
    return JSONResponse({"status": "ready", "database": "postgresql"})


async def _current(conn: asyncpg.Connection, statement: str, claims: dict[str, Any]) -> asyncpg.Record | None:
    client = await conn.fetchrow(statement, str(claims.get("sub", "")))
    if client is None or client["credentials_version"] != claims.get("ver") or client["status"] != "active":
        return None
    return client


async def _throttle(conn: asyncpg.Connection, connection_code: str, address: str, now: datetime) -> bool:
    del address  # an authenticated pharmacy's misses are its own (kit.throttle)
    rows = await conn.fetch(sql.THROTTLE_VERDICT, now, f"client:{connection_code}")
    return not any(r["failures"] >= LOOKUP_BLOCK for r in rows)


Key = tuple[str, str, str]
# The system keeps products by registration number and by key for a minute per process; so do we.
BY_NUMBER: dict[str, tuple[float, asyncpg.Record]] = {}
BY_KEY: dict[Key, tuple[float, list[asyncpg.Record]]] = {}
CATALOGUE_TTL = 60.0


def _key(row: asyncpg.Record) -> Key:
    return (row["ingredient_key"], row["strength_key"], row["form_key"])


async def _products(
    conn: asyncpg.Connection, numbers: list[str], keys: list[Key]
) -> tuple[dict[str, asyncpg.Record], dict[Key, list[asyncpg.Record]]]:
    now = time.monotonic()
    named = {n: BY_NUMBER[n][1] for n in numbers if n in BY_NUMBER and BY_NUMBER[n][0] > now}
    keyed = {k: BY_KEY[k][1] for k in keys if k in BY_KEY and BY_KEY[k][0] > now}
    lacking_numbers = [n for n in numbers if n not in named]
    lacking_keys = [k for k in keys if k not in keyed]
    if lacking_numbers or lacking_keys:
        fetched: dict[Key, list[asyncpg.Record]] = {k: [] for k in lacking_keys}
        rows = await conn.fetch(
            sql.PRODUCTS_NAMED_OR_KEYED,
            lacking_numbers,
            [k[0] for k in lacking_keys],
            [k[1] for k in lacking_keys],
            [k[2] for k in lacking_keys],
        )
        for row in rows:
            if row["registration_no"] in lacking_numbers:
                named[row["registration_no"]] = row
                BY_NUMBER[row["registration_no"]] = (now + CATALOGUE_TTL, row)
            if _key(row) in fetched:
                fetched[_key(row)].append(row)
        for key, found in fetched.items():
            keyed[key] = found
            if found:
                BY_KEY[key] = (now + CATALOGUE_TTL, found)
    return named, keyed


HEADER_WIDTH = 25


def _split(rows: list[asyncpg.Record]) -> tuple[asyncpg.Record, list[dict[str, Any]]]:
    """The joined header-and-lines rows as the header (first row) and one dict per line."""
    names = list(rows[0].keys())[HEADER_WIDTH:]
    return rows[0], [dict(zip(names, tuple(r)[HEADER_WIDTH:], strict=True)) for r in rows]


async def lookup(request: Request) -> Response:
    text = request.path_params["code"]
    claims = claims_of(request)
    if claims is None:
        return problem(401, "Unauthorized")
    address = request.client.host if request.client else "unknown"
    now = datetime.now(UTC)
    async with pool().acquire() as conn, conn.transaction():
        pharmacy = await _current(conn, sql.PHARMACY_BY_CODE, claims)
        if pharmacy is None:
            return problem(401, "Unauthorized")
        if not await _throttle(conn, pharmacy["connection_code"], address, now):
            return problem(429, "Throttled")
        code = canonical(text)
        rows = await conn.fetch(sql.PRESCRIPTION_WITH_LINES, code) if code else []
        if not rows:
            return problem(404, "Not found")
        prescription, items = _split(rows)
        _, products = await _products(conn, [], sorted({_key_of(i) for i in items}))
        await conn.fetchval(
            sql.INSERT_ACCESS_LOG, now, prescription["code"], "pharmacy", pharmacy["connection_code"], "lookup",
            address,
        )  # fmt: skip
    qr_verified = None
    if "." in text.strip():
        qr_verified = _qr_matches(text, prescription, items)
    body = {
        "code": prescription["code"],
        "kind": prescription["kind"],
        "status": status_at(prescription["status"], prescription["valid_until"], now),
        "issued_at": vn(prescription["issued_at"]),
        "valid_until": vn(prescription["valid_until"]),
        "facility_code": prescription["facility_code"],
        "facility_name": prescription["facility_name"],
        "prescriber_name": prescription["prescriber_name"],
        "replaced_by": prescription["replaced_by_code"],
        "patient": {
            "full_name": prescription["patient_full_name"],
            "gender": prescription["patient_gender"],
            "birth_year": prescription["patient_date_of_birth"].year,
        },
        "items": [
            {
                "line_no": i["line_no"],
                "active_ingredient": i["active_ingredient"],
                "strength": i["strength"],
                "dosage_form": i["dosage_form"],
                "registration_no": i["registration_no"],
                "quantity": i["quantity"],
                "unit": i["unit"],
                "instructions": i["instructions"],
                "days_supply": i["days_supply"],
                "dispensed": i["dispensed"],
                "remaining": i["remaining"],
                "substitutes": [
                    {
                        "registration_no": d["registration_no"],
                        "name": d["name"],
                        "unit": d["unit"],
                        "declared_price": d["declared_price"],
                    }
                    for d in products[_key_of(i)]
                ],
            }
            for i in items
        ],
        "qr_verified": qr_verified,
    }
    return JSONResponse(body)


def _key_of(line: dict[str, Any]) -> Key:
    return (line["ingredient_key"], line["strength_key"], line["form_key"])


def _qr_matches(text: str, prescription: asyncpg.Record, items: list[dict[str, Any]]) -> bool:
    _, _, compact = text.strip().partition(".")
    if NATIONAL_PUBLIC is None:
        return False
    try:
        _, payload = jose.verify_compact(compact, NATIONAL_PUBLIC)
    except ValueError:
        return False
    lines = [
        project.Line(
            i["line_no"], i["active_ingredient"], i["strength"], i["dosage_form"], i["quantity"], i["unit"]
        )
        for i in items
    ]
    expected = project.qr_claims(
        prescription["code"],
        prescription["kind"],
        prescription["facility_code"],
        prescription["valid_until"],
        project.lines_digest(lines),
    )
    return bool(json.loads(payload) == expected)


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def _settled(balances: dict[int, tuple[int, int]]) -> str:
    if all(remaining == 0 for _, remaining in balances.values()):
        return "dispensed"
    if any(dispensed > 0 for dispensed, _ in balances.values()):
        return "partially_dispensed"
    return "active"


async def dispense(request: Request) -> Response:
    text = request.path_params["code"]
    claims = claims_of(request)
    if claims is None:
        return problem(401, "Unauthorized")
    key = request.headers.get("idempotency-key")
    body = json.loads(await request.body())
    wanted_items = body["items"]
    address = request.client.host if request.client else "unknown"
    now = datetime.now(UTC)
    async with pool().acquire() as conn, conn.transaction():
        pharmacy = await _current(conn, sql.PHARMACY_BY_CODE, claims)
        if pharmacy is None:
            return problem(401, "Unauthorized")
        held = None
        if key:
            scope = f"pharmacy:{pharmacy['connection_code']}:dispenses"
            held = await conn.fetchval(
                sql.CLAIM_IDEMPOTENCY,
                scope,
                key,
                _fingerprint({"code": canonical(text), "body": body}),
                now,
            )
            if held is None:
                return problem(409, "Idempotency-Key already used")
        if not await _throttle(conn, pharmacy["connection_code"], address, now):
            return problem(429, "Throttled")
        code = canonical(text)
        rows = await conn.fetch(sql.LOCK_PRESCRIPTION_WITH_LINES, code) if code else []
        if not rows:
            return problem(404, "Not found")
        locked, lines = _split(rows)
        if locked["status"] not in ("active", "partially_dispensed") or locked["valid_until"] < now:
            return problem(409, "Not dispensable")
        if locked["kind"] in ("n", "h") and not pharmacy["controlled_licence"]:
            return problem(403, "Controlled licence required")
        items = {i["line_no"]: i for i in lines}
        drugs, _ = await _products(conn, sorted({w["registration_no"] for w in wanted_items}), [])
        wanted: dict[int, int] = {}
        for w in wanted_items:
            line, drug = items.get(w["line_no"]), drugs.get(w["registration_no"])
            if line is None or drug is None:
                return problem(422, "Invalid line")
            if _key(drug) != _key_of(line):
                return problem(422, "Not the prescribed product")
            wanted[w["line_no"]] = wanted.get(w["line_no"], 0) + int(w["quantity"])
        if any(q > items[n]["remaining"] for n, q in wanted.items()):
            return problem(409, "More than remains")
        balances = {n: (i["dispensed"], i["remaining"]) for n, i in items.items()}
        expected = dict(balances)
        for n, q in wanted.items():
            expected[n] = (expected[n][0] + q, expected[n][1] - q)
        status = _settled(expected)
        numbers = sorted(wanted)
        moved = await conn.fetch(
            sql.MOVE_QUANTITIES, status, locked["id"], numbers, [wanted[n] for n in numbers], len(numbers),
            locked["code"],
        )  # fmt: skip
        if len(moved) != len(numbers):
            raise RuntimeError("quantity moved under the lock")
        balances.update({r["line_no"]: (r["dispensed"], r["remaining"]) for r in moved})
        dispense_id = uuid.uuid4().hex
        pharmacist = body["pharmacist"]
        await conn.fetch(
            sql.INSERT_DISPENSE_WITH_LINES, dispense_id, pharmacy["id"], locked["id"], locked["code"],
            pharmacist["full_name"], pharmacist["license_no"], now,
            list(range(1, len(wanted_items) + 1)), [int(w["line_no"]) for w in wanted_items],
            [w["registration_no"] for w in wanted_items], [int(w["quantity"]) for w in wanted_items],
            [w.get("unit_price") for w in wanted_items], [w.get("batch_no") for w in wanted_items],
            [None for _ in wanted_items], [locked["code"] for _ in wanted_items],
        )  # fmt: skip
        await conn.fetchval(
            sql.INSERT_ACCESS_LOG,
            now,
            locked["code"],
            "pharmacy",
            pharmacy["connection_code"],
            "dispense",
            address,
        )
        answer = {
            "dispense_id": dispense_id,
            "prescription_status": status,
            "items": [
                {"line_no": n, "dispensed": d, "remaining": r} for n, (d, r) in sorted(balances.items())
            ],
        }
        if held is not None:
            await conn.execute(sql.COMPLETE_IDEMPOTENCY, 201, json.dumps(answer), scope, held)
    return JSONResponse(answer, status_code=201)


class Replayed(Exception):
    """The signed payload's digest was taken: the whole submission rolls back."""


async def submit(request: Request) -> Response:
    try:
        return await _submit(request)
    except Replayed:
        return problem(409, "Replay refused")


async def _submit(request: Request) -> Response:
    claims = claims_of(request)
    if claims is None:
        return problem(401, "Unauthorized")
    key = request.headers.get("idempotency-key")
    compact = str(json.loads(await request.body())["jws"]).strip()
    header = json.loads(jose.b64url_decode(compact.split(".")[0]))
    now = datetime.now(UTC)
    async with pool().acquire() as conn, conn.transaction():
        facility = await _current(conn, sql.FACILITY_BY_CODE, claims)
        if facility is None:
            return problem(401, "Unauthorized")
        facility_code = facility["facility_code"]
        held = None
        if key:
            scope = f"facility:{facility_code}:prescriptions"
            held = await conn.fetchval(
                sql.CLAIM_IDEMPOTENCY,
                scope,
                key,
                _fingerprint({"jws": compact}),
                now,
            )
            if held is None:
                return problem(409, "Idempotency-Key already used")
        signer = await conn.fetchrow(sql.SIGNER_AT, facility_code, str(header.get("kid", "")))
        if signer is None:
            return problem(400, "Unknown prescriber")
        try:
            _, raw = jose.verify_compact(compact, jose.load_public(json.loads(signer["public_jwk"])))
        except ValueError:
            return problem(400, "Signature does not verify")
        payload = json.loads(raw)
        if payload["facility_code"] != facility_code or signer["status"] != "active" or not signer["anon_1"]:
            return problem(403, "Not allowed")
        items = payload["items"]
        keyed = [
            (
                project.match_key(i["active_ingredient"]),
                project.match_key(i["strength"]),
                project.match_key(i["dosage_form"]),
            )
            for i in items
        ]
        numbers = sorted({i["registration_no"] for i in items if i.get("registration_no")})
        named, by_key = await _products(conn, numbers, sorted(set(keyed)))
        if len(named) != len(numbers) or any(not by_key[k] for k in keyed):
            return problem(422, "Unknown product")
        digest = hashlib.sha256(compact.split(".")[1].encode()).hexdigest()
        kind = payload["kind"]
        code = f"{facility_code}{''.join(secrets.choice(project.CODE_ALPHABET) for _ in range(7))}-{kind}"
        issued_at = datetime.fromisoformat(payload["issued_at"])
        valid_until = issued_at + COLLECTION_WINDOW
        lines = [
            project.Line(n, i["active_ingredient"], i["strength"], i["dosage_form"], i["quantity"], i["unit"])
            for n, i in enumerate(items, start=1)
        ]
        lines_digest = project.lines_digest(lines)
        qr = ""
        if NATIONAL_KEY is not None:
            claims_qr = project.qr_claims(code, kind, facility_code, valid_until, lines_digest)
            qr = jose.sign_compact(
                {"alg": "ES256", "kid": NATIONAL_KID}, project.qr_payload(claims_qr), NATIONAL_KEY
            )
        patient = payload["patient"]
        national_id, insurance_no = patient.get("national_id"), patient.get("insurance_no")
        guardian = patient.get("guardian")
        if guardian and guardian.get("national_id"):
            guardian = {**guardian, "national_id": PII.encrypt(guardian["national_id"], GUARDIAN_NATIONAL_ID)}
        stored = await conn.fetchval(
            sql.INSERT_PRESCRIPTION_WITH_LINES,
            code, kind, "active", facility_code, signer["prescriber_id"], signer["full_name"], facility["name"],
            issued_at, valid_until, None, patient["full_name"],
            datetime.fromisoformat(patient["date_of_birth"]).date(), patient["gender"],
            _sealed(national_id, NATIONAL_ID), _sealed(insurance_no, INSURANCE_NO),
            patient.get("weight_kg"), patient.get("phone"), patient.get("address"),
            json.dumps(guardian), json.dumps(payload["diagnoses"]), payload.get("notes"), None,
            False, _sealed(compact, JWS), digest, lines_digest, f"{code}.{qr}", now,
            [line.line_no for line in lines], [i["active_ingredient"] for i in items],
            [i["strength"] for i in items], [i["dosage_form"] for i in items],
            [i.get("registration_no") for i in items], [int(i["quantity"]) for i in items],
            [i["unit"] for i in items], [i["instructions"] for i in items], [int(i["days_supply"]) for i in items],
            [0 for _ in items], [int(i["quantity"]) for i in items], [k[0] for k in keyed],
            [k[1] for k in keyed], [k[2] for k in keyed], [code for _ in items],
            _index(national_id and national_id.strip(), NATIONAL_ID),
            _index(insurance_no and insurance_no.strip().upper(), INSURANCE_NO),
        )  # fmt: skip
        if stored is None:
            return problem(409, "Replay refused or code taken")
        if await conn.fetchval(sql.CLAIM_PAYLOAD, digest, code) is None:
            raise Replayed  # out of the transaction block, so the prescription rolls back
        await conn.fetchval(sql.INSERT_ACCESS_LOG, now, code, "facility", facility_code, "create", None)
        base = str(request.base_url)
        answer = {
            "code": code,
            "status": "active",
            "valid_until": vn(valid_until),
            "qr_png": f"{base}api/v1/prescriptions/{code}/qr.png",
            "qr_svg": f"{base}api/v1/prescriptions/{code}/qr.svg",
        }
        if held is not None:
            await conn.execute(sql.COMPLETE_IDEMPOTENCY, 201, json.dumps(answer), scope, held)
    return JSONResponse(answer, status_code=201)


app = Starlette(
    routes=[
        Route(project.READY_PATH, readyz),
        Route(project.SUBMIT_PATH, submit, methods=["POST"]),
        Route(project.LOOKUP_PATH, lookup),
        Route(project.DISPENSE_PATH, dispense, methods=["POST"]),
    ],
    lifespan=lifespan,
)
