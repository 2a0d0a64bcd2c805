"""Browser sessions of the consoles: cookies, CSRF, expiry, sign-out, revocation and throttling."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from kit import web_session
from kit.time import utcnow
from kit.web_session import SessionKind, WebSession
from tests.clients import Browser, Browsers, client_from
from tests.conftest import Harness
from tests.factories import Api


async def _rows(harness: Harness, raw: str | None) -> list[WebSession]:
    async with harness.runtime.database.sessionmaker() as session, session.begin():
        found = await session.execute(
            select(WebSession).where(WebSession.id_hash == hashlib.sha256((raw or "").encode()).hexdigest())  # type: ignore[arg-type]
        )
        return list(found.scalars())


class TestCookie:
    async def test_sign_in_sets_a_strict_http_only_session_cookie(self, api: Api, browsers: Browsers) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        response = await browser.pharmacist_sign_in(pharmacy)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/pharmacy"
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("erx_session=")
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        # Plain http here: a Secure cookie would never come back.
        assert "secure" not in cookie

    async def test_cookie_is_secure_over_https(self, api: Api, harness: Harness) -> None:
        pharmacy = await api.pharmacy()
        transport = httpx.ASGITransport(app=harness.app, client=("10.9.9.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://erx.test") as client:
            page = await client.get("/console/pharmacy/sign-in")
            assert "secure" in page.headers["set-cookie"].lower()
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            response = await client.post(
                "/console/pharmacy/sign-in",
                data={
                    "connection_code": pharmacy.connection_code,
                    "secret": pharmacy.client_secret,
                    "csrf_token": token,
                },
            )
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()

    async def test_the_table_holds_only_a_hash_of_the_session_id(
        self, api: Api, browsers: Browsers, harness: Harness
    ) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        raw = browser.session_cookie
        assert raw is not None and len(raw) == 43  # 256 random bits, base64url
        rows = await _rows(harness, raw)
        assert len(rows) == 1
        row = rows[0]
        assert row.kind == SessionKind.PHARMACIST and row.client_id == pharmacy.connection_code
        assert raw not in (row.id_hash, row.csrf_token)

    async def test_wrong_secret_shows_the_form_again_and_opens_nothing(
        self, api: Api, browsers: Browsers
    ) -> None:
        facility = await api.facility()
        browser = browsers()
        response = await browser.prescriber_sign_in(facility, secret="not-the-secret")
        assert response.status_code == 401
        assert 'role="alert"' in response.text
        assert "erx_session" not in response.headers.get("set-cookie", "")
        assert (await browser.get("/console/prescriber")).status_code == 303

    async def test_signing_in_again_ends_the_previous_session(
        self, api: Api, browsers: Browsers, harness: Harness
    ) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        first = browser.session_cookie
        await browser.as_pharmacist(pharmacy)
        assert browser.session_cookie != first
        assert await _rows(harness, first) == []


class TestCsrf:
    async def test_sign_in_without_the_form_token_is_refused(self, api: Api, browsers: Browsers) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.get("/console/pharmacy/sign-in")
        response = await browser.client.post(
            "/console/pharmacy/sign-in",
            data={"connection_code": pharmacy.connection_code, "secret": pharmacy.client_secret},
        )
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/csrf-refused")
        assert browser.session_cookie is None

    async def test_form_post_without_the_session_token_is_refused(
        self, browsers: Browsers, api: Api, harness: Harness
    ) -> None:
        w = await api.world()
        browser = browsers()
        await browser.prescriber_sign_in(w.facility)
        refused = await browser.post_form(
            "/console/prescriber/prescribers", {"prescriber_id": w.prescriber.prescriber_id}, with_csrf=False
        )
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/csrf-refused")
        rows = await _rows(harness, browser.session_cookie)
        assert rows[0].prescriber_id is None

    async def test_json_call_without_the_header_is_refused(self, api: Api, browsers: Browsers) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        refused = await browser.client.post("/console/pharmacy/api/lookup", json={"text": "01001AAAAAAA-c"})
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/csrf-refused")

    async def test_another_sessions_token_is_refused(self, api: Api, browsers: Browsers) -> None:
        pharmacy = await api.pharmacy()
        mine, theirs = browsers(), browsers()
        await mine.as_pharmacist(pharmacy)
        await theirs.as_pharmacist(pharmacy)
        assert mine.csrf and theirs.csrf and mine.csrf != theirs.csrf
        refused = await mine.client.post(
            "/console/pharmacy/api/lookup",
            json={"text": "01001AAAAAAA-c"},
            headers={"X-CSRF-Token": theirs.csrf},
        )
        assert refused.status_code == 403

    async def test_a_cross_site_origin_is_refused_even_with_the_token(
        self, api: Api, browsers: Browsers
    ) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        refused = await browser.post_json(
            "/console/pharmacy/api/lookup",
            {"text": "01001AAAAAAA-c"},
            headers={"Origin": "https://evil.example"},
        )
        assert refused.status_code == 403
        same_site = await browser.post_json(
            "/console/pharmacy/api/lookup", {"text": "01001AAAAAAA-c"}, headers={"Origin": "http://erx.test"}
        )
        assert same_site.status_code == 404

    async def test_no_token_ever_appears_in_a_url(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        browser = browsers()
        signed = await browser.prescriber_sign_in(w.facility)
        chosen = await browser.post_form(
            "/console/prescriber/prescribers", {"prescriber_id": w.prescriber.prescriber_id}
        )
        desk = await browser.get("/console/prescriber")
        secrets = [browser.csrf, browser.session_cookie or ""]
        assert all(secrets)
        for response in (signed, chosen):
            assert not any(s in response.headers["location"] for s in secrets)
        for page in (desk, await browser.get("/console/prescriber/enrol")):
            for attribute in ("href=", "action=", "src="):
                for chunk in page.text.split(attribute)[1:]:
                    url = chunk.split(">", 1)[0]
                    assert not any(s in url for s in secrets), url


class TestExpiry:
    async def test_an_idle_session_ends_after_thirty_minutes(self, harness: Harness) -> None:
        settings = harness.runtime.settings
        start = utcnow()
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            raw, _ = await web_session.open_session(
                session, settings, kind=SessionKind.PHARMACIST, client_id="01NTIDLE01", now=start
            )
            kind = SessionKind.PHARMACIST
            assert await web_session.find_session(
                session, settings, raw, kind, now=start + timedelta(minutes=29)
            )
            # Used at minute 29: idle time counts from there.
            later = start + timedelta(minutes=29 + 29)
            assert await web_session.find_session(session, settings, raw, kind, now=later)
            assert (
                await web_session.find_session(
                    session, settings, raw, kind, now=later + timedelta(minutes=31)
                )
                is None
            )
            # The expired row is gone, so even a clock going backwards reopens nothing.
            assert await web_session.find_session(session, settings, raw, kind, now=start) is None

    async def test_an_active_session_ends_after_eight_hours(self, harness: Harness) -> None:
        settings = harness.runtime.settings
        start = utcnow()
        kind = SessionKind.PRESCRIBER
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            raw, _ = await web_session.open_session(
                session, settings, kind=kind, client_id="0100X", now=start
            )
            moment = start
            while moment < start + timedelta(hours=8) - timedelta(minutes=20):
                moment += timedelta(minutes=20)
                assert await web_session.find_session(session, settings, raw, kind, now=moment), (
                    moment - start
                )
            assert (
                await web_session.find_session(
                    session, settings, raw, kind, now=start + timedelta(hours=8, seconds=1)
                )
                is None
            )

    async def test_a_session_of_another_kind_opens_nothing(self, harness: Harness) -> None:
        settings = harness.runtime.settings
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            raw, _ = await web_session.open_session(
                session, settings, kind=SessionKind.PATIENT, client_id="01001AAAAAAA-c"
            )
            assert await web_session.find_session(session, settings, raw, SessionKind.PHARMACIST) is None
            assert await web_session.find_session(session, settings, raw, SessionKind.PATIENT) is not None

    async def test_an_expired_session_sends_the_browser_to_sign_in(
        self, api: Api, browsers: Browsers, harness: Harness
    ) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        assert (await browser.get("/console/pharmacy")).status_code == 200
        digest = hashlib.sha256((browser.session_cookie or "").encode()).hexdigest()
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            await session.execute(
                update(WebSession)
                .where(WebSession.id_hash == digest)  # type: ignore[arg-type]
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        page = await browser.client.get("/console/pharmacy")
        assert page.status_code == 303
        assert page.headers["location"] == "/console/pharmacy/sign-in"
        assert 'erx_session=""' in page.headers["set-cookie"] or "Max-Age=0" in page.headers["set-cookie"]
        api_call = await browser.post_json("/console/pharmacy/api/lookup", {"text": "01001AAAAAAA-c"})
        assert api_call.status_code == 401

    async def test_sign_out_deletes_the_session(self, api: Api, browsers: Browsers, harness: Harness) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        raw = browser.session_cookie
        out = await browser.post_form("/console/pharmacy/sign-out", {})
        assert out.status_code == 303
        assert await _rows(harness, raw) == []
        # Replaying the old cookie opens nothing.
        replay = browsers()
        replay.client.cookies.set("erx_session", raw or "")
        assert (await replay.client.get("/console/pharmacy")).status_code == 303


class TestRevocation:
    async def test_suspending_the_pharmacy_ends_its_console_at_once(
        self, api: Api, browsers: Browsers, harness: Harness
    ) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        suspended = await api.client.post(
            f"/api/v1/pharmacies/{pharmacy.connection_code}/suspend", headers=await api.admin_headers()
        )
        assert suspended.status_code == 200
        page = await browser.client.get("/console/pharmacy")
        assert page.status_code == 303
        assert page.headers["location"] == "/console/pharmacy/sign-in"
        assert await _rows(harness, browser.session_cookie) == []
        # Signing in again is refused while suspended.
        again = await browsers().pharmacist_sign_in(pharmacy)
        assert again.status_code == 401

    async def test_a_new_facility_secret_ends_the_prescriber_console(
        self, api: Api, browsers: Browsers, harness: Harness
    ) -> None:
        from eprescribe.registry import service as registry

        w = await api.world()
        browser = browsers()
        await browser.as_prescriber(w)
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            await registry.reset_facility_secret(session, harness.runtime.hasher, w.facility.facility_code)
        assert (await browser.client.get("/console/prescriber")).status_code == 303


class TestThrottle:
    async def test_wrong_secrets_are_throttled_like_the_token_endpoint(
        self, tuned_consoles: Harness, tuned_browsers: Browsers
    ) -> None:
        pharmacy = await tuned_consoles.api.pharmacy()
        browser = tuned_browsers()
        statuses = [
            (await browser.pharmacist_sign_in(pharmacy, secret="wrong")).status_code for _ in range(3)
        ]
        assert statuses == [401, 401, 401]
        blocked = await browser.pharmacist_sign_in(pharmacy)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1
        assert browser.session_cookie is None
        # The counters are the gateway's own: its token endpoint refuses this pair too...
        data = {
            "grant_type": "client_credentials",
            "client_id": pharmacy.connection_code,
            "client_secret": pharmacy.client_secret,
        }
        async with client_from(tuned_consoles.app, browser.address) as same:
            assert (await same.post("/gateway/v1/auth/token", data=data)).status_code == 429
        # ...while the pharmacy, from anywhere else, is never locked out by them.
        other = Browser(tuned_consoles.app)
        try:
            token = await other.client.post("/gateway/v1/auth/token", data=data)
            assert token.status_code == 200
            assert (await other.pharmacist_sign_in(pharmacy)).status_code == 303
        finally:
            await other.close()
