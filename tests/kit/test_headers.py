"""Security headers on every answer, `no-store` on patient data, links from the public URL,
the OpenAPI schema's security schemes, and nothing secret or personal in the log."""

from __future__ import annotations

import json
import logging

import pytest

from kit.headers import NOTHING_POLICY
from kit.observability import JsonFormatter
from kit.web import CONTENT_SECURITY_POLICY
from tests.clients import Browsers
from tests.conftest import Harness, HarnessFactory
from tests.factories import Api, World, dispense_body, line, payload_for

PUBLIC = "https://erx.example.gov.vn"


def _secure(r: object) -> None:
    headers = r.headers  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]


class TestSecurityHeaders:
    async def test_on_json_problems_pages_images_and_health(self, api: Api, world: World) -> None:
        created = await api.prescribe(world)
        code = created["code"]
        answers = [
            await api.client.get("/healthz"),
            await api.client.get("/portal/api/v1/prices"),
            await api.client.get("/api/v1/prescriptions/NOPE"),
            await api.client.get(f"/api/v1/prescriptions/{code}/qr.png", headers=world.facility.headers),
            await api.client.get("/", headers={"Accept": "text/html"}),
            await api.client.get("/console/prescriber", headers={"Accept": "text/html"}),
            await api.client.get("/console/pharmacy", headers={"Accept": "text/html"}),
            await api.client.get("/openapi.json"),
        ]
        for r in answers:
            assert r.status_code < 500, r.text
            _secure(r)
        assert answers[1].headers["content-security-policy"] == NOTHING_POLICY
        assert answers[4].headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    async def test_hsts_when_the_public_url_is_https(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("sqlite", public_base_url=PUBLIC)
        r = await harness.client.get("/healthz")
        assert r.headers["strict-transport-security"].startswith("max-age=")

    async def test_docs_page_admits_only_its_own_inline_script(self, api: Api) -> None:
        r = await api.client.get("/docs")
        assert r.status_code == 200
        policy = r.headers["content-security-policy"]
        assert "'sha256-" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy


class TestNoStore:
    async def test_every_answer_with_patient_data(self, api: Api, world: World, harness: Harness) -> None:
        created = await api.prescribe(world)
        code = created["code"]
        pharmacy = await api.pharmacy()
        product = world.products["normal"].registration_no
        answers = [
            await api.client.get(f"/api/v1/prescriptions/{code}", headers=world.facility.headers),
            await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers),
            await api.client.get(f"/api/v1/prescriptions/{code}/qr.svg", headers=world.facility.headers),
            await api.client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers),
            await api.client.post(
                f"/gateway/v1/prescriptions/{code}/dispenses",
                json=dispense_body(line(1, product, 1)),
                headers={**pharmacy.headers, "Idempotency-Key": "no-store-test-0001"},
            ),
            await api.client.get("/gateway/v1/dispenses", headers=pharmacy.headers),
            await api.token("/api/v1/auth/token", world.facility.facility_code, world.facility.client_secret),
        ]
        for r in answers:
            assert r.status_code in (200, 201), r.text
            assert r.headers["cache-control"] == "no-store", r.request.url
        # Public reads keep their caching.
        assert "public" in (await api.client.get("/portal/api/v1/prices")).headers["cache-control"]


class TestPublicLinks:
    async def test_links_come_from_the_configured_url_never_the_host_header(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = await make_harness("sqlite", public_base_url=PUBLIC + "/")
        api = harness.api
        world = await api.world()
        jws = world.prescriber.sign(payload_for(world))
        r = await api.client.post(
            "/api/v1/prescriptions",
            json={"jws": jws},
            headers={**world.facility.headers, "Host": "evil.example"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["qr_png"] == f"{PUBLIC}/api/v1/prescriptions/{r.json()['code']}/qr.png"
        view = await api.client.get(
            f"/api/v1/prescriptions/{r.json()['code']}",
            headers={**world.facility.headers, "Host": "evil.example"},
        )
        assert "evil.example" not in view.text
        assert view.json()["qr_svg"].startswith(PUBLIC + "/api/v1/")


class TestOpenApi:
    async def test_declares_security_schemes_and_problem_errors(self, api: Api) -> None:
        schema = (await api.client.get("/openapi.json")).json()
        schemes = schema["components"]["securitySchemes"]
        assert schemes["core"]["flows"]["clientCredentials"]["tokenUrl"] == "/api/v1/auth/token"
        assert schemes["gateway"]["flows"]["clientCredentials"]["tokenUrl"] == "/gateway/v1/auth/token"
        read = schema["paths"]["/api/v1/prescriptions/{code}"]["get"]
        assert read["security"] == [{"core": []}]
        dispense = schema["paths"]["/gateway/v1/prescriptions/{code}/dispenses"]["post"]
        assert dispense["security"] == [{"gateway": []}]
        assert "security" not in schema["paths"]["/portal/api/v1/prices"]["get"]
        assert "HTTPValidationError" not in schema["components"]["schemas"]
        assert set(read["responses"]["422"]["content"]) == {"application/problem+json"}


class TestTokenErrors:
    @pytest.mark.parametrize("path", ["/api/v1/auth/token", "/gateway/v1/auth/token"])
    async def test_rfc_6749_error_members(self, api: Api, path: str) -> None:
        missing = await api.client.post(path, data={"grant_type": "client_credentials", "client_id": "x"})
        assert missing.status_code == 400
        assert (
            missing.json()["error"] == "invalid_request"
            and "client_secret" in missing.json()["error_description"]
        )
        grant = await api.client.post(
            path, data={"grant_type": "password", "client_id": "x", "client_secret": "y"}
        )
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        wrong = await api.token(path, "01001", "wrong-secret")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert wrong.json()["error_description"]
        for r in (missing, grant, wrong):
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["cache-control"] == "no-store"


class TestNothingSecretInTheLog:
    async def test_secrets_identity_numbers_and_names_never_reach_the_log(
        self, api: Api, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        national_id, insurance_no, name = "079123456789", "HS4790123456789", "Phạm Thị Lộc"
        secret = "S3cr3t-guess-that-must-not-be-logged"
        caplog.set_level(logging.DEBUG)
        await api.token("/api/v1/auth/token", world.facility.facility_code, secret)
        await api.token("/gateway/v1/auth/token", "01NT000000", secret)
        patient = {
            "full_name": name,
            "date_of_birth": "1980-03-15",
            "gender": "female",
            "national_id": national_id,
            "insurance_no": insurance_no,
        }
        payload = payload_for(world, patient=patient)
        created = await api.submit(world.facility, world.prescriber.sign(payload))
        assert created.status_code == 201
        # A refused one too (its body quotes the identity number in a bad field).
        bad = {**patient, "phone": national_id + "x"}
        payload = payload_for(world, patient=bad)
        await api.submit(world.facility, world.prescriber.sign(payload))
        await api.client.get(
            f"/api/v1/prescriptions/{created.json()['code']}", headers=world.facility.headers
        )
        await api.client.get("/api/v1/drugs", params={"q": national_id})
        # The test's own HTTP client (httpx) logs its URLs; everything else is the server's.
        server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
        lines = "\n".join(JsonFormatter().format(record) for record in server)
        assert lines, "the requests were logged"
        for forbidden in (
            secret,
            national_id,
            insurance_no,
            name,
            world.facility.client_secret,
            world.facility.token,
        ):
            assert forbidden not in lines
        for entry in lines.splitlines():
            json.loads(entry)


class TestNoReferrerOnThePatientView:
    """Its addresses carry the access key (`/rx/{code}?k=`): no answer there passes them on."""

    async def test_every_answer_of_the_patient_view(
        self, api: Api, world: World, harness: Harness, browsers: Browsers
    ) -> None:
        code = (await api.prescribe(world))["code"]
        patient = browsers()
        key = patient.access_key(code)
        page = {"Accept": "text/html"}
        answers = {
            "the keyed link": await patient.get(f"/rx/{code}?k={key}"),
            "the open form": await patient.get("/rx"),
            "a pasted link": await patient.client.get("/rx", params={"code": f"/rx/{code}?k={key}"}),
            "an invalid query": await patient.client.get(f"/rx/{code}?k={key}&province=x", headers=page),
            "an unknown page below": await patient.client.get(f"/rx/{code}/nowhere?k={key}", headers=page),
            "the signed-in view": await patient.open_rx(code, "1980-03-15"),
        }
        answers["the view"] = await patient.get(f"/rx/{code}")
        assert answers["a pasted link"].status_code == 303
        assert answers["an invalid query"].status_code == 422
        assert answers["an unknown page below"].status_code in (404, 405)
        assert answers["the signed-in view"].status_code == 303
        assert answers["the view"].status_code == 200 and 'id="rx-title"' in answers["the view"].text
        for what, r in answers.items():
            assert r.headers["referrer-policy"] == "no-referrer", what
            assert r.headers["x-frame-options"] == "DENY", what
        # Elsewhere the site keeps same-origin (the prefix is a path, not a string start).
        for path in ("/", "/search?q=para", "/rxnowhere"):
            r = await harness.client.get(path, headers=page)
            assert r.headers["referrer-policy"] == "same-origin", path
