"""What operators see: request ids, one JSON line per request without secrets, metrics, proxies."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eprescribe.prescriptions import service as prescriptions
from kit.observability import REQUEST_LOGGER, JsonFormatter, redact_query
from kit.proxy import TrustedProxies, client_from_forwarded
from kit.settings import Settings
from tests.clients import Browsers, client_from
from tests.conftest import Harness, HarnessFactory
from tests.factories import PHARMACIST, access_entries, dispense_body, line, payload_for

NATIONAL_ID = "001180012345"
INSURANCE_NO = "DN4010112345678"
PATIENT_NAME = "Trần Thị Bình"
DOB = "1980-03-15"


class Captured(logging.Handler):
    """Every record of every logger, formatted as the production handler writes it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # httpx logs the URLs the tests' own clients ask for: the server never logs through it.
        if not record.name.startswith("httpx"):
            self.lines.append(self.format(record))

    def requests(self) -> list[dict[str, object]]:
        parsed = [json.loads(text) for text in self.lines]
        return [entry for entry in parsed if entry["logger"] == REQUEST_LOGGER]


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


class TestRequestId:
    async def test_a_request_without_one_gets_a_fresh_id(self, harness: Harness) -> None:
        first = await harness.client.get("/healthz")
        second = await harness.client.get("/healthz")
        assert len(first.headers["x-request-id"]) == 32
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    async def test_a_sane_incoming_id_is_kept(self, harness: Harness, captured: Captured) -> None:
        r = await harness.client.get("/healthz", headers={"X-Request-ID": "edge-4f1c2a9b7d"})
        assert r.headers["x-request-id"] == "edge-4f1c2a9b7d"
        assert captured.requests()[-1]["request_id"] == "edge-4f1c2a9b7d"

    @pytest.mark.parametrize("bad", ["short", "x" * 200, 'a"b, "level": "x', "line\tbreak-0123456"])
    async def test_an_insane_incoming_id_is_replaced(self, pg_harness: Harness, bad: str) -> None:
        r = await pg_harness.client.get("/healthz", headers={"X-Request-ID": bad})
        assert r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) == 32


class TestLogLines:
    async def test_one_line_per_request_with_route_status_client_and_problem(
        self, harness: Harness, captured: Captured
    ) -> None:
        w = await harness.api.world()
        code = (await harness.api.prescribe(w))["code"]
        pharmacy = await harness.api.pharmacy()
        before = len(captured.requests())
        ok = await harness.client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
        missing = await harness.client.get(
            "/gateway/v1/prescriptions/01001AAAAAAA-c", headers=pharmacy.headers
        )
        assert (ok.status_code, missing.status_code) == (200, 404)
        found, refused = captured.requests()[before:]
        assert found["route"] == refused["route"] == "/gateway/v1/prescriptions/{code}"
        assert (found["status"], refused["status"]) == (200, 404)
        assert found["client_kind"] == "pharmacy" and found["client_code"] == pharmacy.connection_code
        assert "problem" not in found and refused["problem"] == "prescription-not-found"
        assert found["request_id"] == ok.headers["x-request-id"]
        assert found["method"] == "GET" and float(str(found["duration_ms"])) > 0
        assert found["service"] == "all" and found["level"] == "info"

    async def test_a_full_flow_logs_no_identity_number_patient_field_secret_or_token(
        self, harness: Harness, browsers: Browsers, captured: Captured
    ) -> None:
        api = harness.api
        w = await api.world()
        payload = payload_for(w, notes="Tái khám sau 5 ngày")
        submitted = await api.submit(w.facility, w.prescriber.sign(payload), key="submit-key-0001")
        assert submitted.status_code == 201, submitted.text
        code = submitted.json()["code"]
        pharmacy = await api.pharmacy()
        gateway = client_from(harness.app)
        looked = await gateway.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
        assert looked.status_code == 200
        product = w.products["normal"]
        sold = await gateway.post(
            f"/gateway/v1/prescriptions/{code}/dispenses",
            json=dispense_body(line(1, product.registration_no, 4, unit_price=1200), pharmacist=PHARMACIST),
            headers={**pharmacy.headers, "Idempotency-Key": "dispense-key-0001"},
        )
        assert sold.status_code == 201, sold.text
        patient = browsers()
        opened = await patient.open_rx(code, DOB)
        assert opened.status_code in (200, 303), opened.text
        assert (await patient.get(f"/rx/{code}")).status_code == 200
        pharmacist = browsers()
        await pharmacist.as_pharmacist(pharmacy)
        prescriber = browsers()
        await prescriber.as_prescriber(w)
        wrong = await api.token("/api/v1/auth/token", w.facility.facility_code, "not-the-secret")
        assert wrong.status_code == 401
        await gateway.aclose()

        text = "\n".join(captured.lines)
        assert len(captured.requests()) >= 10
        forbidden = {
            "national id": NATIONAL_ID,
            "insurance number": INSURANCE_NO,
            "patient name": PATIENT_NAME,
            "date of birth": DOB,
            "notes": "Tái khám sau 5 ngày",
            "facility secret": w.facility.client_secret,
            "pharmacy secret": pharmacy.client_secret,
            "admin secret": harness.admin_secret,
            "facility token": w.facility.token,
            "pharmacy token": pharmacy.token,
            "the signed prescription": w.prescriber.sign(payload).split(".")[1][:40],
            "the prescription code (paths are logged as templates)": code,
            "the pharmacist's name": PHARMACIST["full_name"],
        }
        for cookie in (patient.session_cookie, pharmacist.session_cookie, prescriber.session_cookie):
            assert cookie
            forbidden[f"session cookie {cookie[:6]}"] = cookie
        leaked = [what for what, value in forbidden.items() if value in text]
        assert leaked == []


class TestMetrics:
    async def test_counts_requests_by_route_template_and_the_domain_events(self, harness: Harness) -> None:
        w = await harness.api.world()
        pharmacy = await harness.api.pharmacy()
        before = (await harness.client.get("/metrics")).text
        code = (await harness.api.prescribe(w))["code"]
        assert (
            await harness.client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
        ).is_success
        missing = await harness.client.get(
            "/gateway/v1/prescriptions/01001AAAAAAA-c", headers=pharmacy.headers
        )
        assert missing.status_code == 404
        product = w.products["normal"]
        sold = await harness.client.post(
            f"/gateway/v1/prescriptions/{code}/dispenses",
            json=dispense_body(line(1, product.registration_no, 1)),
            headers={**pharmacy.headers, "Idempotency-Key": "metrics-0001"},
        )
        assert sold.status_code == 201
        after = (await harness.client.get("/metrics")).text
        route = "/gateway/v1/prescriptions/{code}"

        def grew(name: str, **labels: str) -> float:
            return metric(after, name, **labels) - metric(before, name, **labels)

        assert grew("erx_http_requests_total", method="GET", route=route, status="200") == 1
        assert grew("erx_http_requests_total", method="GET", route=route, status="404") == 1
        assert grew("erx_http_request_duration_seconds_count", method="GET", route=route) == 2
        assert grew("erx_prescriptions_submitted_total", kind="c") == 1
        assert grew("erx_lookups_total", outcome="found") == 1
        assert grew("erx_lookups_total", outcome="not_found") == 1
        assert grew("erx_dispenses_total") == 1
        assert grew("erx_refusals_total", problem="prescription-not-found") == 1
        assert code not in after, "raw paths never become labels"

    async def test_unknown_methods_share_one_label(self, pg_harness: Harness) -> None:
        before = (await pg_harness.client.get("/metrics")).text
        assert (await pg_harness.client.request("BREW-COFFEE", "/healthz")).status_code == 405
        after = (await pg_harness.client.get("/metrics")).text
        assert "BREW-COFFEE" not in after
        labels = {"method": "OTHER", "route": "/healthz", "status": "405"}
        assert (
            metric(after, "erx_http_requests_total", **labels)
            - metric(before, "erx_http_requests_total", **labels)
            == 1
        )

    async def test_pool_use_and_throttled_attempts(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("postgresql", throttle_block_failures=2, throttle_free_failures=1)
        before = (await harness.client.get("/metrics")).text
        for _ in range(3):
            await harness.api.token("/api/v1/auth/token", "01999", "wrong-secret")
        after = (await harness.client.get("/metrics")).text
        assert metric(after, "erx_throttled_total") - metric(before, "erx_throttled_total") >= 1
        assert metric(after, "erx_db_pool_capacity", database="primary") >= 2
        assert metric(after, "erx_db_pool_connections", database="primary") >= 1


class TestTrustedProxies:
    proxies = TrustedProxies(Settings(trusted_proxies="127.0.0.0/8, 10.0.0.0/8").trusted_proxy_networks)

    @pytest.mark.parametrize(
        ("peer", "forwarded", "client"),
        [
            ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # not a proxy: its header is ignored
            ("127.0.0.1", [], "127.0.0.1"),
            ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
            ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # a forged left part is skipped
            ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], "198.51.100.1"),  # two proxies of ours
            ("127.0.0.1", ["6.6.6.6", "198.51.100.1, 10.1.2.3"], "198.51.100.1"),
            ("127.0.0.1", ["10.9.9.9, 10.1.2.3"], "10.9.9.9"),  # only proxies: the farthest
            ("127.0.0.1", ["not-an-address"], "not-an-address"),
            ("127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
        ],
    )
    def test_the_right_most_untrusted_address_is_the_client(
        self, peer: str, forwarded: list[str], client: str
    ) -> None:
        assert client_from_forwarded(peer, forwarded, self.proxies) == client

    def test_nothing_is_trusted_by_default(self) -> None:
        none = TrustedProxies(Settings().trusted_proxy_networks)
        assert client_from_forwarded("127.0.0.1", ["198.51.100.1"], none) == "127.0.0.1"

    def test_a_bad_setting_is_refused(self) -> None:
        with pytest.raises(ValueError, match="ERX_TRUSTED_PROXIES"):
            Settings(trusted_proxies="10.0.0.0/8, proxy.example")

    async def test_the_access_log_and_throttling_see_the_forwarded_client(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = await make_harness("sqlite", trusted_proxies="127.0.0.0/8")
        w = await harness.api.world()
        code = (await harness.api.prescribe(w))["code"]
        pharmacy = await harness.api.pharmacy()
        behind_proxy = client_from(harness.app, "127.0.0.9")
        direct = client_from(harness.app, "198.51.100.20")
        forwarded = {**pharmacy.headers, "X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
        assert (await behind_proxy.get(f"/gateway/v1/prescriptions/{code}", headers=forwarded)).is_success
        assert (await direct.get(f"/gateway/v1/prescriptions/{code}", headers=forwarded)).is_success
        await behind_proxy.aclose()
        await direct.aclose()
        addresses = [e.client_address for e in await access_entries(harness, code) if e.action == "lookup"]
        assert addresses == ["198.51.100.7", "198.51.100.20"]

    async def test_the_proxys_scheme_makes_cookies_secure(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("sqlite", trusted_proxies="127.0.0.1")
        proxied = client_from(harness.app, "127.0.0.1")
        page = await proxied.get("/console/pharmacy/sign-in", headers={"X-Forwarded-Proto": "https"})
        untrusted = client_from(harness.app, "198.51.100.3")
        plain = await untrusted.get("/console/pharmacy/sign-in", headers={"X-Forwarded-Proto": "https"})
        await proxied.aclose()
        await untrusted.aclose()
        assert "secure" in page.headers["set-cookie"].lower()
        assert "secure" not in plain.headers["set-cookie"].lower()


class TestSecretLinks:
    """The patient's paper links to `/rx/{code}?k=<access key>`: the key is in no log line."""

    async def test_the_access_key_of_a_link_never_reaches_a_log_line(
        self, harness: Harness, browsers: Browsers, captured: Captured
    ) -> None:
        w = await harness.api.world()
        code = (await harness.api.prescribe(w))["code"]
        link = prescriptions.patient_link(harness.settings.public_base_url, harness.runtime.keyring, code)
        key = link.rsplit("?k=", 1)[1]
        patient = browsers()
        assert (await patient.get(f"/rx/{code}?k={key}&lang=en")).status_code == 200
        assert (await patient.get("/rx/01001AAAAAAA-c?k=SECRET")).status_code == 200
        # The open form takes the pasted link, key and all.
        pasted = await patient.client.get("/rx", params={"code": link})
        assert pasted.status_code == 303 and key in pasted.headers["location"]
        text = "\n".join(captured.lines)
        assert key not in text and "SECRET" not in text
        routes = [entry["route"] for entry in captured.requests()]
        assert routes.count("/rx/{code}") >= 2 and "/rx" in routes

    def test_a_url_quoted_in_any_log_message_loses_its_secret_values(self) -> None:
        # uvicorn's access line (off in every deployment) is one such message.
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", "/rx/01001K7Q2M9X-c?lang=en&k=SECRET&access_token=SECRET2", "1.1", 200),
            None,
        )
        line = json.loads(JsonFormatter().format(record))["msg"]
        assert "SECRET" not in line
        assert "/rx/01001K7Q2M9X-c?lang=en&k=…&access_token=… HTTP/1.1" in line
        assert redact_query("q=paracetamol&province=01") == "q=paracetamol&province=01"
        assert redact_query("code=https%3A%2F%2Fx%2Frx%2FC%3Fk%3DSECRET") == "code=…"
        assert redact_query("kind=c&k=") == "kind=c&k=…"
