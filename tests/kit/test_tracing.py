"""OpenTelemetry: off by default; switched on, a request's span has the database's spans under it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kit import tracing
from kit.settings import Settings
from tests.conftest import Harness, HarnessFactory

_exporter: InMemorySpanExporter | None = None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans of this test (one exporter on the process's provider, emptied around each test)."""
    global _exporter
    if _exporter is None:
        _exporter = InMemorySpanExporter()
        provider = tracing.tracer_provider(Settings(otel_enabled=True, otel_exporter="none"))
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
    _exporter.clear()
    try:
        yield _exporter
    finally:
        tracing.uninstrument()
        _exporter.clear()


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


class TestTracing:
    async def test_off_by_default(self, harness: Harness, spans: InMemorySpanExporter) -> None:
        assert (await harness.client.get("/readyz")).status_code == 200
        assert spans.get_finished_spans() == ()

    async def test_a_lookup_is_a_server_span_with_database_children(
        self, make_harness: HarnessFactory, spans: InMemorySpanExporter
    ) -> None:
        harness = await make_harness("postgresql", otel_enabled=True, otel_exporter="none")
        w = await harness.api.world()
        code = (await harness.api.prescribe(w))["code"]
        pharmacy = await harness.api.pharmacy()
        spans.clear()
        r = await harness.client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers)
        assert r.status_code == 200
        finished = spans.get_finished_spans()
        by_id = {s.context.span_id: s for s in finished}
        (server,) = [s for s in finished if s.name == "GET /gateway/v1/prescriptions/{code}"]
        assert (
            server.attributes is not None
            and server.attributes["http.route"] == "/gateway/v1/prescriptions/{code}"
        )
        database = [s for s in finished if s.attributes and "db.system" in str(dict(s.attributes))]
        assert database, [s.name for s in finished]
        assert all(s.context.trace_id == server.context.trace_id for s in database)
        assert all(server.name in ancestors(s, by_id) for s in database)
        libraries = {s.instrumentation_scope.name for s in database if s.instrumentation_scope}
        assert any("sqlalchemy" in name for name in libraries), libraries
        assert any("asyncpg" in name for name in libraries), libraries
        # Statements without their values: no code, no identity number in any attribute.
        everything = " ".join(str(dict(s.attributes or {})) for s in finished)
        assert "001180012345" not in everything

    async def test_a_keyed_link_shows_in_no_span(
        self, make_harness: HarnessFactory, spans: InMemorySpanExporter
    ) -> None:
        harness = await make_harness("sqlite", otel_enabled=True, otel_exporter="none")
        code = "01001K7Q2M9X-c"
        spans.clear()
        r = await harness.client.get(f"/rx/{code}", params={"lang": "en", "k": "SECRETSECRET"})
        assert r.status_code == 200
        pasted = await harness.client.get("/rx", params={"code": f"http://x/rx/{code}?k=SECRETSECRET"})
        assert pasted.status_code == 303
        finished = spans.get_finished_spans()
        queries = {
            s.name: (s.attributes or {}).get("url.query") for s in finished if s.name.startswith("GET")
        }
        assert queries["GET /rx/{code}"] == "lang=en&k=…"
        assert queries["GET /rx"] == "code=…"
        everything = " ".join(f"{s.name} {dict(s.attributes or {})}" for s in finished)
        assert "SECRETSECRET" not in everything
