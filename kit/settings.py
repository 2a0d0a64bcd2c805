"""Settings of the whole system: one class, read once at startup and injected."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password"}


class Settings(BaseSettings):
    """Every tunable of the system; environment variables are prefixed `ERX_`."""

    # An error never echoes the input: it holds the keys and the database password.
    model_config = SettingsConfigDict(
        env_prefix="ERX_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "test", "production"] = "development"
    # DATABASE_URL is the conventional name; no prefix so operators can use the usual variable.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # Where the portal's public reads go (a streaming replica); unset -> DATABASE_URL.
    read_database_url: str | None = Field(default=None, validation_alias="READ_DATABASE_URL")
    data_dir: Path = Path("./var")
    # Per process: at least the requests one worker serves at once, so no connection is opened per request.
    database_pool_size: int = 20
    # Connections older than this are replaced on checkout (a failover, a restarted proxy).
    database_pool_recycle_seconds: int = 1800
    database_echo: bool = False
    # Behind PgBouncer in transaction mode older than 1.21 (no prepared-statement tracking):
    # no statement caches and a unique name per prepared statement.
    database_pgbouncer: bool = False
    # At startup, set what imports and setup made aside from garbage collection and collect the
    # young less often (kit/app.py `settle_heap`); off in the tests, which share one process.
    tune_garbage_collector: bool = True

    # Addresses or networks (comma-separated) whose X-Forwarded-For / -Proto are believed.
    trusted_proxies: str = ""

    # One JSON line per request on stderr; the level of everything else.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_requests: bool = True
    metrics_enabled: bool = True
    # OpenTelemetry tracing: off by default; `otlp` sends to otel_endpoint (or the standard
    # OTEL_EXPORTER_OTLP_* variables), `console` prints spans, `none` only propagates context.
    otel_enabled: bool = False
    otel_exporter: Literal["otlp", "console", "none"] = "otlp"
    otel_endpoint: str | None = None
    otel_service_name: str = "erx"

    issuer: str = "https://erx.gov.vn"
    # Links in answers are built from this, never from the request's Host header.
    public_base_url: str = "http://127.0.0.1:8000"
    # A private EC P-256 JWK (JSON). When unset, a key is generated into the data directory
    # (development and tests; production refuses to start without it).
    signing_key: SecretStr | None = None
    access_token_ttl_seconds: int = 900
    # Citizen IDs and insurance numbers at rest (kit/pii.py): JSON
    # {"active": kid, "keys": {kid: base64 of 32 bytes, ...}, "index_key": base64 of 32 bytes}.
    # When unset, keys are generated into <data_dir>/keys/pii-keys.json on first run (development,
    # demo; production refuses to start without it); `erx pii rotate` adds a key there, or
    # re-encrypts after ERX_IDENTITY_KEY gained one.
    identity_key: SecretStr | None = None

    # argon2id parameters (OWASP 2024 baseline: m=19 MiB, t=2, p=1).
    argon2_time_cost: int = 2
    argon2_memory_cost_kib: int = 19456
    argon2_parallelism: int = 1

    # Prescriptions: how old or how far in the future `issued_at` may be.
    issued_at_max_age_seconds: int = 24 * 3600
    clock_skew_seconds: int = 300

    # National protocol (QĐ 808): admit gui-don-thuoc bodies without `signature` from legacy HIS
    # software; such prescriptions are stored marked `unsigned`.
    national_accept_unsigned: bool = False

    # Dispensing corrections.
    dispense_void_window_seconds: int = 24 * 3600

    # Throttling of guessing (wrong secrets, unknown prescription codes).
    throttle_free_failures: int = 5
    throttle_block_failures: int = 10
    throttle_window_seconds: int = 600
    throttle_delay_seconds: float = 0.5
    # An address may hide several honest outlets (one NAT): it gets this many times the limits.
    throttle_address_factor: int = 4
    # Unknown prescription codes: a quota per pharmacy (only its own token can spend it).
    throttle_lookup_free_failures: int = 20
    throttle_lookup_block_failures: int = 100
    # A (client, address) pair that signed in lately is not refused there for others' guesses.
    throttle_known_pair_seconds: int = 30 * 24 * 3600

    # Browser sessions of the consoles and the patient view (erx/web_session.py).
    web_session_idle_seconds: int = 30 * 60
    web_session_max_seconds: int = 8 * 3600
    # The patient view, per prescription code: wrong access keys (any address) and, for the
    # holder of the right key, wrong dates of birth, counted over a day (366 dates, 6 a day).
    patient_view_free_failures: int = 3
    patient_view_block_failures: int = 6
    patient_view_window_seconds: int = 24 * 3600

    # Housekeeping (`erx maintenance purge`): how long a retry may still replay its first answer,
    # and how many rows one statement deletes (each batch is its own short transaction).
    # Throttle counters go once their window has passed, web sessions once expired.
    idempotency_retention_hours: int = 48
    purge_batch_size: int = 5000

    # Overload (kit/shedding.py): requests one process serves at once (beyond them: 503 with
    # Retry-After at once, instead of a queue of timeouts; health and metrics never count),
    # and each client's quota (a token bucket per access token, else per address). Both are
    # counted in each process, in memory: no shared counter costs a round trip per request.
    max_concurrent_requests: int = Field(default=64, ge=1)
    client_quota_per_second: float = Field(
        default=200.0,
        gt=0,
        description=(
            "Requests per second one client may send to ONE process (a token bucket in that "
            "process's memory). Across a deployment of P processes (pods x ERX_WORKERS) a client "
            "whose requests are spread over them gets up to P times this; one whose single "
            "keep-alive connection lands on one process gets this once. It guards each process; "
            "a deployment-wide limit per client belongs at the edge."
        ),
    )
    client_quota_burst: int = Field(
        default=1000,
        ge=1,
        description="Requests one client may send to ONE process at once, beyond its rate (see the rate).",
    )
    # How long a request waits for a pooled PostgreSQL connection before it is answered 503.
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _parse_trusted_proxies(cls, value: str) -> str:
        for part in _split(value):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError(f"ERX_TRUSTED_PROXIES: {part!r} is not an address or network") from exc
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production":
            if self.signing_key is not None and (
                self.signing_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
            ):
                raise ValueError("ERX_SIGNING_KEY holds a placeholder; set a real private JWK")
            if self.identity_key is None:
                # Without it each process would generate keys of its own into its data directory,
                # and encrypt identity numbers that the other processes cannot read.
                raise ValueError(
                    "production needs ERX_IDENTITY_KEY, the identity-number keys every process "
                    "shares (kit/pii.py); make them with: python -c 'from kit.pii import PiiKeys; "
                    "print(PiiKeys.generate().to_json())'"
                )
            if self.identity_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError("ERX_IDENTITY_KEY holds a placeholder; set real keys (see kit/pii.py)")
            if self.signing_key is None:
                # Without it each process would sign QR codes and derive patients' access keys
                # with a key of its own, which the other processes do not hold.
                raise ValueError(
                    "production needs ERX_SIGNING_KEY, the national signing keys every process "
                    'shares: a private EC P-256 JWK, or {"keys": [...]} (the last one signs)'
                )
            if self.database_url is None:
                raise ValueError("production needs DATABASE_URL (PostgreSQL)")
        return self

    @property
    def resolved_database_url(self) -> str:
        """Return the configured URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            url = self.database_url
            # Accept the plain scheme operators usually paste and pick the async driver.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'erx.sqlite3').resolve()}"

    @property
    def resolved_read_database_url(self) -> str | None:
        """Return the replica's URL with the async driver, or None when reads use the primary."""
        if not self.read_database_url:
            return None
        url = self.read_database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(part, strict=False) for part in _split(self.trusted_proxies))

    @property
    def public_url(self) -> str:
        """`public_base_url` with exactly one trailing slash: the base of every printed link."""
        return self.public_base_url.rstrip("/") + "/"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def access_token_ttl(self) -> timedelta:
        return timedelta(seconds=self.access_token_ttl_seconds)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process."""
    return Settings()
