"""Errors: an HTML page in the visitor's language for a browser on a page path, problem+json for programs."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import exc as sa_exc

from kit.error_pages import home_of, is_api_path
from kit.web import CONTENT_SECURITY_POLICY
from tests.clients import Browsers
from tests.conftest import Harness
from tests.factories import Api

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class TestPagesForBrowsers:
    @pytest.mark.parametrize("path", ["/nowhere", "/products-typo", "/console/prescriber/nowhere"])
    async def test_an_unknown_page_is_a_404_page_in_vietnamese(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        r = await client.get(path, headers=HTML)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert '<html lang="vi">' in r.text and "Không tìm thấy trang" in r.text
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        assert r.headers["cache-control"] == "no-store"

    async def test_the_page_follows_the_chosen_language(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/nowhere?lang=en", headers=HTML)
        assert r.status_code == 404 and '<html lang="en">' in r.text and "Page not found" in r.text

    async def test_a_console_error_leads_back_to_its_console(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/console/pharmacy/nowhere", headers=HTML)
        assert 'href="/console/pharmacy"' in r.text

    async def test_a_refused_form_is_a_page_without_the_developers_sentence(
        self, api: Api, browsers: Browsers
    ) -> None:
        pharmacy = await api.pharmacy()
        browser = browsers()
        await browser.as_pharmacist(pharmacy)
        refused = await browser.client.post(
            "/console/pharmacy/prices",
            headers=HTML,
            files={"file": ("gia.csv", b"registration_no,price,unit\n", "text/csv")},
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert "Biểu mẫu đã hết hạn" in refused.text and "did not come from this site" not in refused.text

    async def test_the_rx_paths_without_a_code_ask_for_the_code(self, client: httpx.AsyncClient) -> None:
        asked = await client.get("/rx", headers=HTML)
        assert asked.status_code == 200 and 'name="code"' in asked.text
        slash = await client.get("/rx/", headers=HTML)
        assert slash.status_code in (307, 308) and slash.headers["location"].endswith("/rx")


class TestProblemsForPrograms:
    async def test_an_api_path_answers_problem_json_even_to_a_browser(
        self, client: httpx.AsyncClient
    ) -> None:
        for path in ("/api/v1/nowhere", "/gateway/v1/nowhere", "/portal/api/v1/nowhere"):
            r = await client.get(path, headers=HTML)
            assert r.status_code == 404
            assert r.headers["content-type"] == "application/problem+json"
            assert set(r.json()) >= {"type", "title", "status", "detail"}

    async def test_an_unknown_path_without_html_in_accept_is_problem_json(
        self, client: httpx.AsyncClient
    ) -> None:
        r = await client.get("/nowhere")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"

    async def test_field_errors_carry_a_stable_code_and_its_values(self, api: Api) -> None:
        r = await api.client.post(
            "/api/v1/facilities",
            json={"name": "", "province_code": "01"},
            headers=await api.admin_headers(),
        )
        assert r.status_code == 422
        error = r.json()["errors"][0]
        assert error["loc"] == ["body", "name"] and error["msg"]
        assert error["code"] == "string_too_short" and error["params"] == {"min_length": 1}


class TestPathRules:
    def test_console_scripts_and_operations_are_programs(self) -> None:
        assert is_api_path("/console/prescriber/api/prescriptions")
        assert is_api_path("/console/api/icd10") and is_api_path("/healthz") and is_api_path("/openapi.json")
        assert not is_api_path("/console/prescriber/prescriptions/01001K7Q2M9X-c")
        assert not is_api_path("/rx/01001K7Q2M9X-c") and not is_api_path("/search")

    def test_home_is_the_console_or_the_portal(self) -> None:
        assert home_of("/console/pharmacy/dispenses/x") == "/console/pharmacy"
        assert home_of("/rx/01001K7Q2M9X-c") == "/" and home_of("/") == "/"


class TestCatchAllPages:
    """What escapes a route (a bug, the database out of reach) is a page for a browser on a page."""

    @pytest.fixture
    def broken(self, harness: Harness) -> httpx.AsyncClient:
        async def explode() -> None:
            raise RuntimeError("secret detail 001180012345")

        async def no_database() -> None:
            # What SQLAlchemy raises when PostgreSQL refuses connections (kit.failsafe: a 503).
            raise sa_exc.OperationalError("SELECT 1", None, ConnectionRefusedError(111, "refused"))

        harness.app.add_api_route("/tests/explode", explode)
        harness.app.add_api_route("/tests/no-database", no_database)
        harness.app.add_api_route("/console/pharmacy/tests-explode", explode)
        return harness.client

    async def test_a_bug_is_a_500_page_in_vietnamese_with_english_below(
        self, broken: httpx.AsyncClient
    ) -> None:
        r = await broken.get("/tests/explode", headers=HTML)
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("text/html")
        assert '<html lang="vi">' in r.text
        assert (
            r.text.index("Hệ thống đang gặp sự cố")
            < r.text.index('lang="en"')
            < r.text.index("Something went wrong")
        )
        assert "001180012345" not in r.text and "RuntimeError" not in r.text
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert "retry-after" not in r.headers

    async def test_the_chosen_language_alone(self, broken: httpx.AsyncClient) -> None:
        english = await broken.get("/tests/explode?lang=en", headers=HTML)
        assert english.status_code == 500 and '<html lang="en">' in english.text
        assert "Something went wrong" in english.text and "Hệ thống đang gặp sự cố" not in english.text
        assert english.headers["cache-control"] == "no-store"
        # The cookie the switch set keeps the next error page in English too.
        again = await broken.get("/tests/explode", headers=HTML)
        assert '<html lang="en">' in again.text and "Hệ thống" not in again.text

    async def test_a_console_page_leads_back_to_its_console(self, broken: httpx.AsyncClient) -> None:
        r = await broken.get("/console/pharmacy/tests-explode", headers=HTML)
        assert r.status_code == 500 and 'href="/console/pharmacy"' in r.text

    async def test_the_database_out_of_reach_is_a_503_page_with_retry_after(
        self, broken: httpx.AsyncClient
    ) -> None:
        r = await broken.get("/tests/no-database", headers=HTML)
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("text/html")
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "Hệ thống tạm thời gián đoạn" in r.text and "Temporarily unavailable" in r.text

    @pytest.mark.parametrize("accept", ["application/json", "*/*", None])
    async def test_programs_keep_problem_json(self, broken: httpx.AsyncClient, accept: str | None) -> None:
        headers = {"Accept": accept} if accept else {}
        for path, status in (("/tests/explode", 500), ("/tests/no-database", 503)):
            r = await broken.get(path, headers=headers)
            assert r.status_code == status
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["status"] == status
            assert r.headers["cache-control"] == "no-store"
            assert (status == 503) == ("retry-after" in r.headers)

    async def test_an_api_path_is_problem_json_even_to_a_browser(self, harness: Harness) -> None:
        async def explode() -> None:
            raise RuntimeError("boom")

        harness.app.add_api_route("/api/v1/tests-explode", explode)
        r = await harness.client.get("/api/v1/tests-explode", headers=HTML)
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
