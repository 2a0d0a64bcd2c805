"""OpenTelemetry tracing, switched on by `ERX_OTEL_ENABLED` (off by default: no cost then).

FastAPI makes the request's span itself (its native telemetry, given our tracer provider);
SQLAlchemy's and asyncpg's instrumentations add a child span per statement, with the SQL text
and never its parameters. Spans go to an OTLP/HTTP collector (`ERX_OTEL_ENDPOINT`, else the
standard `OTEL_EXPORTER_OTLP_*` variables), to stdout (`console`), or nowhere (`none`: context
propagation only). One tracer provider per process. A request span's URL attributes never
carry a secret query value (the patient link's `k`): the provider's first processor replaces
them as the span starts, before any exporter sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kit.observability import redact_query
from kit.settings import Settings

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span

# Where a span carries a query string (FastAPI's `url.query`; older conventions, client spans).
URL_ATTRIBUTES = ("url.query", "url.full", "http.target", "http.url")

_provider: Any = None
_asyncpg_instrumented = False


def tracer_provider(settings: Settings) -> Any:
    """The process's tracer provider, made on first use from the settings."""
    global _provider
    if _provider is not None:
        return _provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    class RedactQuery(SpanProcessor):
        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            redact_span(span)

    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    # First: the exporters added after it only ever see redacted attributes.
    provider.add_span_processor(RedactQuery())
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = (
            OTLPSpanExporter(endpoint=settings.otel_endpoint)
            if settings.otel_endpoint
            else OTLPSpanExporter()
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    elif settings.otel_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    _provider = provider
    return provider


def redact_span(span: Span) -> None:
    """Take secret query values out of a span's URL attributes (FastAPI's own list knows only
    cloud signatures)."""
    attributes = span.attributes or {}
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and (redacted := redact_query(value)) != value:
            span.set_attribute(name, redacted)


def fastapi_telemetry(settings: Settings) -> TelemetryConfig:
    """FastAPI's native telemetry: request spans on our provider when enabled, nothing otherwise.

    Its own metrics and logs stay off: `/metrics` and the JSON request line cover them.
    """
    if not settings.otel_enabled:
        return {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
    return {
        "tracer_provider": tracer_provider(settings),
        "metrics": False,
        "logs": False,
        "auto_configure": False,
    }


def instrument_engine(settings: Settings, engine: AsyncEngine) -> None:
    """Add statement spans to one engine (and, once per process, to asyncpg)."""
    global _asyncpg_instrumented
    if not settings.otel_enabled or getattr(engine.sync_engine, "_erx_traced", False):
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    provider = tracer_provider(settings)
    # Its declared range stops below SQLAlchemy 2.1, whose engine events it uses are unchanged
    # (the tracing test checks the spans).
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
    engine.sync_engine._erx_traced = True  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql" and not _asyncpg_instrumented:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
        _asyncpg_instrumented = True


def uninstrument() -> None:
    """Undo the process-wide asyncpg patch (tests that switched tracing on)."""
    global _asyncpg_instrumented
    if _asyncpg_instrumented:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
        _asyncpg_instrumented = False
