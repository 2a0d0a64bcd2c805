"""The limit's facility route: a signed prescription submitted, with the system's one ES256
verification (the prescriber's), the national QR signature and the sealed identity numbers."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench import jose, project
from bench.minimal import sql
from bench.minimal.common import (
    COLLECTION_WINDOW,
    GUARDIAN_NATIONAL_ID,
    NATIONAL_KEY,
    NATIONAL_KID,
    PII,
    blind_index,
    claims_of,
    current_client,
    fingerprint,
    pool,
    problem,
    products,
    sealed,
    vn,
)
from eprescribe.prescriptions.models import INSURANCE_NO, JWS, NATIONAL_ID


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
        facility = await current_client(conn, sql.FACILITY_BY_CODE, claims)
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
                fingerprint({"jws": compact}),
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
        named, by_key = await products(conn, numbers, sorted(set(keyed)))
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
            sealed(national_id, NATIONAL_ID), sealed(insurance_no, INSURANCE_NO),
            patient.get("weight_kg"), patient.get("phone"), patient.get("address"),
            json.dumps(guardian), json.dumps(payload["diagnoses"]), payload.get("notes"), None,
            False, sealed(compact, JWS), digest, lines_digest, f"{code}.{qr}", now,
            [line.line_no for line in lines], [i["active_ingredient"] for i in items],
            [i["strength"] for i in items], [i["dosage_form"] for i in items],
            [i.get("registration_no") for i in items], [int(i["quantity"]) for i in items],
            [i["unit"] for i in items], [i["instructions"] for i in items], [int(i["days_supply"]) for i in items],
            [0 for _ in items], [int(i["quantity"]) for i in items], [k[0] for k in keyed],
            [k[1] for k in keyed], [k[2] for k in keyed], [code for _ in items],
            blind_index(national_id and national_id.strip(), NATIONAL_ID),
            blind_index(insurance_no and insurance_no.strip().upper(), INSURANCE_NO),
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
