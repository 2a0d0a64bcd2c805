"""Settings of the whole system: one class, read once at startup and injected."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password"}


class Settings(BaseSettings):
    """Every tunable of the system; environment variables are prefixed `ERX_`."""

    model_config = SettingsConfigDict(env_prefix="ERX_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # DATABASE_URL is the conventional name; no prefix so operators can use the usual variable.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Path("./var")
    # Per process: at least the requests one worker serves at once, so no connection is opened per request.
    database_pool_size: int = 20
    # Connections older than this are replaced on checkout (a failover, a restarted proxy).
    database_pool_recycle_seconds: int = 1800
    database_echo: bool = False

    issuer: str = "https://erx.gov.vn"
    public_base_url: str = "http://127.0.0.1:8000"
    # A private EC P-256 JWK (JSON). When unset, a key is generated into the data directory.
    signing_key: SecretStr | None = None
    access_token_ttl_seconds: int = 900

    # argon2id parameters (OWASP 2024 baseline: m=19 MiB, t=2, p=1).
    argon2_time_cost: int = 2
    argon2_memory_cost_kib: int = 19456
    argon2_parallelism: int = 1

    # Prescriptions: how old or how far in the future `issued_at` may be.
    issued_at_max_age_seconds: int = 24 * 3600
    clock_skew_seconds: int = 300

    # Dispensing corrections.
    dispense_void_window_seconds: int = 24 * 3600

    # Throttling of guessing (wrong secrets, unknown prescription codes).
    throttle_free_failures: int = 5
    throttle_block_failures: int = 10
    throttle_window_seconds: int = 600
    throttle_delay_seconds: float = 0.5
    # An address may hide several honest outlets (one NAT): it gets this many times the limits.
    throttle_address_factor: int = 4

    # Browser sessions of the consoles and the patient view (erx/web_session.py).
    web_session_idle_seconds: int = 30 * 60
    web_session_max_seconds: int = 8 * 3600
    # Date-of-birth answers per prescription code: tighter than secrets, the space is small.
    patient_view_free_failures: int = 3
    patient_view_block_failures: int = 6

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production":
            if self.signing_key is not None and (
                self.signing_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
            ):
                raise ValueError("ERX_SIGNING_KEY holds a placeholder; set a real private JWK")
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
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def access_token_ttl(self) -> timedelta:
        return timedelta(seconds=self.access_token_ttl_seconds)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process."""
    return Settings()
