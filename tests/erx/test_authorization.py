"""The authorization matrix (issue 11, item 3): every endpoint by every kind of caller.

The endpoints are enumerated from the app's own OpenAPI schema: a route without a row here
fails `test_every_route_has_a_row`. Each row names the route's guard; the guard's column of
`EXPECTED` says what every kind of caller gets. "ok" means authorization let the caller through
(the answer is then whatever the empty or harmless request earns: 2xx, 409 or 422); a number is
the exact status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import httpx
import pytest

from kit.security import ClientKind, KeyRing, Principal, TokenService
from kit.time import utcnow
from tests.conftest import Harness
from tests.factories import Facility, Pharmacy, dispense_body, line


class Guard(StrEnum):
    PUBLIC = "public"  # anyone; a token, good or bad, changes nothing
    ADMIN = "admin"  # the health department
    FACILITY = "facility"  # any active facility (its own objects only)
    OWN_PRESCRIPTION = "own_prescription"  # the issuing facility only
    PHARMACY = "pharmacy"  # any active pharmacy
    OWN_DISPENSE = "own_dispense"  # the pharmacy that dispensed
    CONTROLLED = "controlled"  # a pharmacy with a controlled-substance licence
    PRESCRIBER = "prescriber"  # a prescriber signed in through the national door
    APP_KEY = "app_key"  # pharmacy software by its app-name/app-key headers (national door)


CALLERS = [
    "none",
    "admin",
    "issuer",
    "other_facility",
    "pharmacy",
    "other_pharmacy",
    "revoked",
    "suspended",
    "expired",
    "foreign_key",
    "other_kind",
]
OK = "ok"

# What each kind of caller gets, per guard. `revoked`, `suspended`, `expired` and `foreign_key`
# are of the kind the route expects; `other_kind` is a valid token of another kind.
EXPECTED: dict[Guard, dict[str, int | str]] = {
    Guard.PUBLIC: dict.fromkeys(CALLERS, OK),
    Guard.ADMIN: {
        "none": 401,
        "admin": OK,
        "issuer": 403,
        "other_facility": 403,
        "pharmacy": 403,
        "other_pharmacy": 403,
        "revoked": 403,
        "suspended": 403,
        "expired": 401,
        "foreign_key": 401,
        "other_kind": 403,
    },
    Guard.FACILITY: {
        "none": 401,
        "admin": 403,
        "issuer": OK,
        "other_facility": OK,
        "pharmacy": 403,
        "other_pharmacy": 403,
        "revoked": 401,
        "suspended": 401,
        "expired": 401,
        "foreign_key": 401,
        "other_kind": 403,
    },
    Guard.OWN_PRESCRIPTION: {
        "none": 401,
        "admin": 403,
        "issuer": OK,
        "other_facility": 404,
        "pharmacy": 403,
        "other_pharmacy": 403,
        "revoked": 401,
        "suspended": 401,
        "expired": 401,
        "foreign_key": 401,
        "other_kind": 403,
    },
    Guard.PHARMACY: {
        "none": 401,
        "admin": 403,
        "issuer": 403,
        "other_facility": 403,
        "pharmacy": OK,
        "other_pharmacy": OK,
        "revoked": 401,
        "suspended": 401,
        "expired": 401,
        "foreign_key": 401,
        "other_kind": 403,
    },
    Guard.OWN_DISPENSE: {
        "none": 401,
        "admin": 403,
        "issuer": 403,
        "other_facility": 403,
        "pharmacy": OK,
        "other_pharmacy": 404,
        "revoked": 401,
        "suspended": 401,
        "expired": 401,
        "foreign_key": 401,
        "other_kind": 403,
    },
    Guard.CONTROLLED: {
        "none": 401,
        "admin": 403,
        "issuer": 403,
        "other_facility": 403,
        "pharmacy": OK,
        "other_pharmacy": 403,
        "revoked": 401,
        "suspended": 401,
        "expired": 401,
        "foreign_key": 401,
        "other_kind": 403,
    },
    # No caller here holds a prescriber's token: every token is of another kind, or no token.
    Guard.PRESCRIBER: {
        "none": 401,
        "admin": 403,
        "issuer": 403,
        "other_facility": 403,
        "pharmacy": 403,
        "other_pharmacy": 403,
        "revoked": 403,
        "suspended": 403,
        "expired": 401,
        "foreign_key": 401,
        "other_kind": 403,
    },
    # A bearer token of any kind opens nothing there: the headers are the credentials.
    Guard.APP_KEY: dict.fromkeys(CALLERS, 401),
}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # as in the OpenAPI schema
    guard: Guard
    # Filled from the scene: {code}, {narcotic}, {dispense_id}, ...
    url: str
    body: Any = None
    form: dict[str, str] | None = None
    # The caller family whose revoked/suspended/expired/foreign tokens this row is tried with.
    family: ClientKind | None = None
    # The national protocol answers its refusals in its own JSON, not problem+json.
    dialect: bool = False


ROWS: list[Row] = [
    Row("GET", "/healthz", Guard.PUBLIC, "/healthz"),
    Row("GET", "/readyz", Guard.PUBLIC, "/readyz"),
    Row("GET", "/.well-known/jwks.json", Guard.PUBLIC, "/.well-known/jwks.json"),
    Row("POST", "/api/v1/auth/token", Guard.PUBLIC, "/api/v1/auth/token", form={"grant_type": "x"}),
    Row("POST", "/api/v1/facilities", Guard.ADMIN, "/api/v1/facilities", body={}),
    Row("POST", "/api/v1/prescribers", Guard.ADMIN, "/api/v1/prescribers", body={}),
    Row("POST", "/api/v1/pharmacies", Guard.ADMIN, "/api/v1/pharmacies", body={}),
    Row(
        "POST",
        "/api/v1/pharmacies/{connection_code}/rotate-secret",
        Guard.ADMIN,
        "/api/v1/pharmacies/{bystander_pharmacy}/rotate-secret",
    ),
    Row(
        "POST",
        "/api/v1/pharmacies/{connection_code}/{action}",
        Guard.ADMIN,
        "/api/v1/pharmacies/{bystander_pharmacy}/reinstate",
    ),
    Row(
        "POST",
        "/api/v1/facilities/{facility_code}/{action}",
        Guard.ADMIN,
        "/api/v1/facilities/{bystander_facility}/reinstate",
    ),
    Row(
        "POST",
        "/api/v1/prescribers/{prescriber_id}/{action}",
        Guard.ADMIN,
        "/api/v1/prescribers/{prescriber}/reinstate",
    ),
    Row(
        "PUT",
        "/api/v1/prescribers/{prescriber_id}/key",
        Guard.ADMIN,
        "/api/v1/prescribers/{prescriber}/key",
        body={},
    ),
    Row("POST", "/api/v1/drugs", Guard.ADMIN, "/api/v1/drugs", body={}),
    Row("GET", "/api/v1/drugs", Guard.PUBLIC, "/api/v1/drugs?q=testamol"),
    Row("POST", "/api/v1/prescriptions", Guard.FACILITY, "/api/v1/prescriptions", body={}),
    Row("GET", "/api/v1/prescriptions/{code}", Guard.OWN_PRESCRIPTION, "/api/v1/prescriptions/{code}"),
    Row(
        "GET",
        "/api/v1/prescriptions/{code}/qr.png",
        Guard.OWN_PRESCRIPTION,
        "/api/v1/prescriptions/{code}/qr.png",
    ),
    Row(
        "GET",
        "/api/v1/prescriptions/{code}/qr.svg",
        Guard.OWN_PRESCRIPTION,
        "/api/v1/prescriptions/{code}/qr.svg",
    ),
    Row(
        "POST",
        "/api/v1/prescriptions/{code}/cancel",
        Guard.OWN_PRESCRIPTION,
        "/api/v1/prescriptions/{cancellable}/cancel",
        body={"reason": "ma trận quyền"},
    ),
    Row(
        "GET",
        "/api/v1/prescriptions/{code}/access-log",
        Guard.OWN_PRESCRIPTION,
        "/api/v1/prescriptions/{code}/access-log",
    ),
    Row("POST", "/gateway/v1/auth/token", Guard.PUBLIC, "/gateway/v1/auth/token", form={"grant_type": "x"}),
    Row("GET", "/gateway/v1/prescriptions/{code}", Guard.PHARMACY, "/gateway/v1/prescriptions/{code}"),
    Row(
        "POST",
        "/gateway/v1/prescriptions/{code}/dispenses",
        Guard.PHARMACY,
        "/gateway/v1/prescriptions/{code}/dispenses",
        body={},
    ),
    Row(
        "POST",
        "/gateway/v1/dispenses/{dispense_id}/void",
        Guard.OWN_DISPENSE,
        "/gateway/v1/dispenses/{dispense_id}/void",
        body={"reason": "ma trận quyền"},
    ),
    Row("GET", "/gateway/v1/dispenses", Guard.PHARMACY, "/gateway/v1/dispenses"),
    Row("PUT", "/gateway/v1/prices", Guard.PHARMACY, "/gateway/v1/prices", body={}),
    Row("GET", "/portal/api/v1/prices", Guard.PUBLIC, "/portal/api/v1/prices?q=testamol"),
    Row("GET", "/portal/api/v1/prices.csv", Guard.PUBLIC, "/portal/api/v1/prices.csv?q=testamol"),
    Row(
        "GET",
        "/portal/api/v1/drugs/{registration_no}/outlets",
        Guard.PUBLIC,
        "/portal/api/v1/drugs/{registration_no}/outlets",
    ),
    Row(
        "GET",
        "/portal/api/v1/drugs/{registration_no}/history",
        Guard.PUBLIC,
        "/portal/api/v1/drugs/{registration_no}/history",
    ),
    Row(
        "GET",
        "/portal/api/v1/drugs/{registration_no}",
        Guard.PUBLIC,
        "/portal/api/v1/drugs/{registration_no}",
    ),
    Row("GET", "/portal/api/v1/outlets/{outlet_id}", Guard.PUBLIC, "/portal/api/v1/outlets/1"),
    # The national protocol (QĐ 808) and HL7 FHIR doors.
    Row(
        "POST",
        "/api/auth/dang-nhap-co-so-kham-chua-benh",
        Guard.PUBLIC,
        "/api/auth/dang-nhap-co-so-kham-chua-benh",
        body={},
    ),
    Row("POST", "/api/auth/dang-nhap-bac-si", Guard.PUBLIC, "/api/auth/dang-nhap-bac-si", body={}),
    Row("POST", "/api/v1/them-bac-si", Guard.FACILITY, "/api/v1/them-bac-si", body={}, dialect=True),
    Row("POST", "/api/v1/xoa-bac-si", Guard.FACILITY, "/api/v1/xoa-bac-si", body={}, dialect=True),
    Row("POST", "/api/v1/gui-don-thuoc", Guard.PRESCRIBER, "/api/v1/gui-don-thuoc", body={}, dialect=True),
    Row(
        "GET",
        "/api/v1/thong-tin-don-thuoc/{ma_don_thuoc}",
        Guard.APP_KEY,
        "/api/v1/thong-tin-don-thuoc/{code}",
        dialect=True,
    ),
    Row(
        "POST",
        "/api/v1/cap-nhat-don-thuoc",
        Guard.APP_KEY,
        "/api/v1/cap-nhat-don-thuoc",
        body={},
        dialect=True,
    ),
    Row("POST", "/api/v1/prescriptions/fhir", Guard.FACILITY, "/api/v1/prescriptions/fhir", body={}),
    Row(
        "GET",
        "/api/v1/prescriptions/{code}/fhir",
        Guard.OWN_PRESCRIPTION,
        "/api/v1/prescriptions/{code}/fhir",
    ),
    Row(
        "PUT",
        "/api/v1/prescribers/{prescriber_id}/password",
        Guard.ADMIN,
        "/api/v1/prescribers/{prescriber}/password",
        body={},
    ),
    Row(
        "GET",
        "/gateway/v1/dispenses/{dispense_id}/fhir",
        Guard.OWN_DISPENSE,
        "/gateway/v1/dispenses/{dispense_id}/fhir",
    ),
]
# Object-level variants of a schema route: the same path on another object.
VARIANTS: list[Row] = [
    Row("GET", "/gateway/v1/prescriptions/{code}", Guard.CONTROLLED, "/gateway/v1/prescriptions/{narcotic}"),
    Row(
        "GET",
        "/gateway/v1/prescriptions/{code}",
        Guard.CONTROLLED,
        "/gateway/v1/prescriptions/{psychotropic}",
    ),
    Row(
        "POST",
        "/gateway/v1/prescriptions/{code}/dispenses",
        Guard.CONTROLLED,
        "/gateway/v1/prescriptions/{narcotic}/dispenses",
        body="narcotic-dispense",
    ),
]


def _family(row: Row) -> ClientKind:
    if row.path.startswith("/gateway/"):
        return ClientKind.PHARMACY
    if row.guard is Guard.ADMIN:
        return ClientKind.ADMIN
    return ClientKind.FACILITY


class TestTheMatrixCoversEveryRoute:
    async def test_every_route_has_a_row(self, harness: Harness) -> None:
        schema = harness.app.openapi()["paths"]
        served = {(method.upper(), path) for path, ops in schema.items() for method in ops}
        rows = {(r.method, r.path) for r in ROWS}
        assert served - rows == set(), "routes without a row in the authorization matrix"
        assert rows - served == set(), "rows of routes that no longer exist"


@dataclass
class Scene:
    values: dict[str, str]
    tokens: dict[tuple[str, ClientKind], str | None]
    narcotic_body: dict[str, Any]


async def _scene(harness: Harness) -> Scene:
    api = harness.api
    w = await api.world()
    other = await api.facility()
    code = (await api.prescribe(w))["code"]
    cancellable = (await api.prescribe(w, notes="to be cancelled"))["code"]
    narcotic = (await api.prescribe(w, kind="n"))["code"]
    psychotropic = (await api.prescribe(w, kind="h"))["code"]
    controlled = await api.pharmacy(controlled=True)
    plain = await api.pharmacy()
    sold = await api.client.post(
        f"/gateway/v1/prescriptions/{code}/dispenses",
        json=dispense_body(line(1, w.products["normal"].registration_no, 1)),
        headers={**controlled.headers, "Idempotency-Key": "matrix-1"},
    )
    assert sold.status_code == 201, sold.text
    bystander_facility = await api.facility()
    bystander_pharmacy = await api.pharmacy()
    revoked_f, suspended_f = await api.facility(), await api.facility()
    revoked_p, suspended_p = await api.pharmacy(), await api.pharmacy()
    admin = await api.admin_headers()
    for path in (
        f"/api/v1/facilities/{revoked_f.facility_code}/revoke",
        f"/api/v1/facilities/{suspended_f.facility_code}/suspend",
        f"/api/v1/pharmacies/{revoked_p.connection_code}/revoke",
        f"/api/v1/pharmacies/{suspended_p.connection_code}/suspend",
    ):
        r = await api.client.post(path, headers=admin)
        assert r.status_code == 200, r.text
    settings = harness.settings
    past = utcnow() - timedelta(days=1)
    foreign = TokenService(settings, KeyRing([KeyRing._generate()]))
    admin_principal = Principal(kind=ClientKind.ADMIN, client_id=harness.admin_id, credentials_version=0)
    facility_principal = Principal(
        kind=ClientKind.FACILITY, client_id=w.facility.facility_code, credentials_version=0
    )
    pharmacy_principal = Principal(
        kind=ClientKind.PHARMACY, client_id=controlled.connection_code, credentials_version=0
    )
    principals = {
        ClientKind.ADMIN: admin_principal,
        ClientKind.FACILITY: facility_principal,
        ClientKind.PHARMACY: pharmacy_principal,
    }
    bearer = admin["Authorization"].removeprefix("Bearer ")
    kind_token = {
        ClientKind.ADMIN: bearer,
        ClientKind.FACILITY: w.facility.token,
        ClientKind.PHARMACY: controlled.token,
    }
    tokens: dict[tuple[str, ClientKind], str | None] = {}
    # Prescribers sign in only through the national door: none of these callers is one.
    for family in (ClientKind.ADMIN, ClientKind.FACILITY, ClientKind.PHARMACY):
        tokens[("none", family)] = None
        tokens[("admin", family)] = bearer
        tokens[("issuer", family)] = w.facility.token
        tokens[("other_facility", family)] = other.token
        tokens[("pharmacy", family)] = controlled.token
        tokens[("other_pharmacy", family)] = plain.token
        # Revoked and suspended clients exist for facilities and pharmacies; the admin routes
        # are tried with a revoked or suspended facility's token.
        revoked: Facility | Pharmacy = revoked_p if family is ClientKind.PHARMACY else revoked_f
        suspended: Facility | Pharmacy = suspended_p if family is ClientKind.PHARMACY else suspended_f
        tokens[("revoked", family)] = revoked.token
        tokens[("suspended", family)] = suspended.token
        tokens[("expired", family)] = harness.runtime.tokens.issue(principals[family], now=past).access_token
        tokens[("foreign_key", family)] = foreign.issue(principals[family]).access_token
        tokens[("other_kind", family)] = (
            kind_token[ClientKind.FACILITY]
            if family is not ClientKind.FACILITY
            else kind_token[ClientKind.PHARMACY]
        )
    values = {
        "code": code,
        "cancellable": cancellable,
        "narcotic": narcotic,
        "psychotropic": psychotropic,
        "dispense_id": str(sold.json()["dispense_id"]),
        "registration_no": w.products["normal"].registration_no,
        "prescriber": w.prescriber.prescriber_id,
        "bystander_facility": bystander_facility.facility_code,
        "bystander_pharmacy": bystander_pharmacy.connection_code,
    }
    # A dispense a licensed pharmacy may make (one unit).
    narcotic_body = dispense_body(line(1, w.products["narcotic"].registration_no, 1))
    return Scene(values, tokens, narcotic_body)


async def _call(harness: Harness, scene: Scene, row: Row, caller: str) -> httpx.Response:
    token = scene.tokens[(caller, row.family or _family(row))]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers["Idempotency-Key"] = f"matrix-{caller}-{row.method}-{row.url}"[:100]
    url = row.url.format(**scene.values)
    body = scene.narcotic_body if row.body == "narcotic-dispense" else row.body
    if row.form is not None:
        return await harness.client.request(row.method, url, data=row.form, headers=headers)
    if body is not None:
        return await harness.client.request(row.method, url, json=body, headers=headers)
    return await harness.client.request(row.method, url, headers=headers)


def _judge(expected: int | str, got: httpx.Response) -> bool:
    if expected == OK:
        return got.status_code < 500 and got.status_code not in (401, 403, 404)
    return got.status_code == expected


class TestTheMatrix:
    async def test_every_endpoint_by_every_kind_of_caller(self, harness: Harness) -> None:
        scene = await _scene(harness)
        wrong: list[str] = []
        for row in [*ROWS, *VARIANTS]:
            for caller in CALLERS:
                expected = EXPECTED[row.guard][caller]
                got = await _call(harness, scene, row, caller)
                if not _judge(expected, got):
                    wrong.append(
                        f"{row.method} {row.url} as {caller}: expected {expected}, got {got.status_code}"
                    )
                if got.status_code >= 400 and row.guard is not Guard.PUBLIC and not row.dialect:
                    assert got.headers["content-type"].startswith("application/problem+json"), (row, caller)
        assert wrong == [], "\n".join(wrong)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
