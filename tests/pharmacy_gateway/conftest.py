"""A second harness with tight limits: throttling, expiry and the void window within a test's time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import ENGINES, Harness, _settings_for
from tests.live import live_server

TUNED = {
    "throttle_free_failures": 2,
    "throttle_block_failures": 4,
    "throttle_window_seconds": 3,
    "throttle_address_factor": 2,
    # Lets a test sign a prescription issued long enough ago to be past valid_until.
    "issued_at_max_age_seconds": 30 * 24 * 3600,
    # Every dispense is already outside the void window.
    "dispense_void_window_seconds": 0,
}


@pytest.fixture(scope="session", params=ENGINES)
async def tuned(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """Both engines again, with the limits above."""
    engine = str(request.param)
    cluster = request.getfixturevalue("pg_cluster") if engine == "postgresql" else None
    settings = await _settings_for(
        engine, "erx_gateway_tuned", tmp_path_factory.mktemp(f"tuned-{engine}"), cluster, **TUNED
    )
    h = await Harness(settings).start()
    yield h
    await h.close()


@pytest.fixture(scope="session")
def live(pg_harness: Harness) -> Iterator[str]:
    """The real server (uvicorn, in a thread) on the PostgreSQL harness's database."""
    with live_server(pg_harness.settings) as base_url:
        yield base_url
