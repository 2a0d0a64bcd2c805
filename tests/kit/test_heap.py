"""A worker sets its startup objects aside from garbage collection (kit/app.py `settle_heap`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kit.app import YOUNG_THRESHOLD
from tests.conftest import HarnessFactory


@pytest.fixture
def restored_collector() -> Iterator[None]:
    # The suite runs in one process: leave the collector as the other tests expect it.
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
async def test_startup_freezes_what_it_made_and_collects_the_young_less_often(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("sqlite", tune_garbage_collector=True)
    assert gc.get_freeze_count() == 0
    async with harness.app.router.lifespan_context(harness.app):
        # The app, its routes and every imported module, not a handful.
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert (await harness.client.get("/healthz")).status_code == 200


@pytest.mark.usefixtures("restored_collector")
async def test_the_tuning_can_be_turned_off(make_harness: HarnessFactory) -> None:
    harness = await make_harness("sqlite", tune_garbage_collector=False)
    before = gc.get_threshold()
    async with harness.app.router.lifespan_context(harness.app):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before
