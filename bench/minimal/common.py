"""What the limit's routes share: its settings, its pool, the system's answers for a missing
token or a throttled client, the client re-check, the per-process catalogue, and the sealing of
identity numbers under the system's keys."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench import jose, project
from bench.minimal import sql
from eprescribe.prescriptions.models import GUARDIAN
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


def sealed(value: str | None, context: str) -> str | None:
    return PII.encrypt(value, context) if value else None


def blind_index(value: str | None, context: str) -> str | None:
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


async def current_client(
    conn: asyncpg.Connection, statement: str, claims: dict[str, Any]
) -> asyncpg.Record | None:
    client = await conn.fetchrow(statement, str(claims.get("sub", "")))
    if client is None or client["credentials_version"] != claims.get("ver") or client["status"] != "active":
        return None
    return client


async def throttle_allows(
    conn: asyncpg.Connection, connection_code: str, address: str, now: datetime
) -> bool:
    del address  # an authenticated pharmacy's misses are its own (kit.throttle)
    rows = await conn.fetch(sql.THROTTLE_VERDICT, now, f"client:{connection_code}")
    return not any(r["failures"] >= LOOKUP_BLOCK for r in rows)


Key = tuple[str, str, str]
# The system keeps products by registration number and by key for a minute per process; so do we.
BY_NUMBER: dict[str, tuple[float, asyncpg.Record]] = {}
BY_KEY: dict[Key, tuple[float, list[asyncpg.Record]]] = {}
CATALOGUE_TTL = 60.0


def product_key(row: asyncpg.Record) -> Key:
    return (row["ingredient_key"], row["strength_key"], row["form_key"])


async def products(
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
            if product_key(row) in fetched:
                fetched[product_key(row)].append(row)
        for key, found in fetched.items():
            keyed[key] = found
            if found:
                BY_KEY[key] = (now + CATALOGUE_TTL, found)
    return named, keyed


HEADER_WIDTH = 25


def split(rows: list[asyncpg.Record]) -> tuple[asyncpg.Record, list[dict[str, Any]]]:
    """The joined header-and-lines rows as the header (first row) and one dict per line."""
    names = list(rows[0].keys())[HEADER_WIDTH:]
    return rows[0], [dict(zip(names, tuple(r)[HEADER_WIDTH:], strict=True)) for r in rows]


def key_of(line: dict[str, Any]) -> Key:
    return (line["ingredient_key"], line["strength_key"], line["form_key"])


def fingerprint(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()
