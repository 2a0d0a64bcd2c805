"""The limit's pharmacy routes: a lookup by code or QR text, and a dispense under the
prescription's row lock, each one transaction of the system's own statements."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench import jose, project
from bench.minimal import sql
from bench.minimal.common import (
    NATIONAL_PUBLIC,
    canonical,
    claims_of,
    current_client,
    fingerprint,
    key_of,
    pool,
    problem,
    product_key,
    products,
    split,
    status_at,
    throttle_allows,
    vn,
)


async def lookup(request: Request) -> Response:
    text = request.path_params["code"]
    claims = claims_of(request)
    if claims is None:
        return problem(401, "Unauthorized")
    address = request.client.host if request.client else "unknown"
    now = datetime.now(UTC)
    async with pool().acquire() as conn, conn.transaction():
        pharmacy = await current_client(conn, sql.PHARMACY_BY_CODE, claims)
        if pharmacy is None:
            return problem(401, "Unauthorized")
        if not await throttle_allows(conn, pharmacy["connection_code"], address, now):
            return problem(429, "Throttled")
        code = canonical(text)
        rows = await conn.fetch(sql.PRESCRIPTION_WITH_LINES, code) if code else []
        if not rows:
            return problem(404, "Not found")
        prescription, items = split(rows)
        _, substitutes = await products(conn, [], sorted({key_of(i) for i in items}))
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
                    for d in substitutes[key_of(i)]
                ],
            }
            for i in items
        ],
        "qr_verified": qr_verified,
    }
    return JSONResponse(body)


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
        pharmacy = await current_client(conn, sql.PHARMACY_BY_CODE, claims)
        if pharmacy is None:
            return problem(401, "Unauthorized")
        held = None
        if key:
            scope = f"pharmacy:{pharmacy['connection_code']}:dispenses"
            held = await conn.fetchval(
                sql.CLAIM_IDEMPOTENCY,
                scope,
                key,
                fingerprint({"code": canonical(text), "body": body}),
                now,
            )
            if held is None:
                return problem(409, "Idempotency-Key already used")
        if not await throttle_allows(conn, pharmacy["connection_code"], address, now):
            return problem(429, "Throttled")
        code = canonical(text)
        rows = await conn.fetch(sql.LOCK_PRESCRIPTION_WITH_LINES, code) if code else []
        if not rows:
            return problem(404, "Not found")
        locked, lines = split(rows)
        if locked["status"] not in ("active", "partially_dispensed") or locked["valid_until"] < now:
            return problem(409, "Not dispensable")
        if locked["kind"] in ("n", "h") and not pharmacy["controlled_licence"]:
            return problem(403, "Controlled licence required")
        items = {i["line_no"]: i for i in lines}
        drugs, _ = await products(conn, sorted({w["registration_no"] for w in wanted_items}), [])
        wanted: dict[int, int] = {}
        for w in wanted_items:
            line, drug = items.get(w["line_no"]), drugs.get(w["registration_no"])
            if line is None or drug is None:
                return problem(422, "Invalid line")
            if product_key(drug) != key_of(line):
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
